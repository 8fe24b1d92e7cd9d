"""The REINFORCE update: official per-sample arithmetic, batched vs sequential, NaN skip, roles isolated."""

from __future__ import annotations

import math

import pytest
import torch

from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.policy import RoleUpdater, adapt_beta, group_advantages, sequential_chain


def official_loop(rewards, kls, b, beta, cfg):
    """The official src/train.py order, written out: use b and β, then update β with KL_i, then b with r_i."""
    used = []
    for r, kl in zip(rewards, kls):
        used.append((r - b, beta))
        beta = min(cfg.kl_max, max(cfg.kl_min, beta * math.exp(cfg.kl_adapt_rate * (kl - cfg.kl_target) / cfg.kl_target)))
        b = 0.9 * b + 0.1 * r
    return used, b, beta


def test_sequential_chain_matches_official_loop():
    cfg = EvoLMMConfig()
    rewards, kls = [0.3, 1.0, 0.0, 0.62, 0.9], [0.0, 0.05, 0.01, 0.3, 0.02]
    b_used, beta_used, b_end, beta_end = sequential_chain(rewards, kls, 0.25, 1e-3, cfg)
    used, b_ref, beta_ref = official_loop(rewards, kls, 0.25, 1e-3, cfg)
    assert [r - b for r, b in zip(rewards, b_used)] == pytest.approx([u[0] for u in used], abs=0)
    assert beta_used == [u[1] for u in used]
    assert (b_end, beta_end) == pytest.approx((b_ref, beta_ref), rel=1e-12)


def test_beta_controller_clips():
    cfg = EvoLMMConfig()
    assert adapt_beta(1e-3, 0.02, cfg) == pytest.approx(1e-3)  # KL on target: β unchanged
    assert adapt_beta(1e-3, 0.04, cfg) > 1e-3 > adapt_beta(1e-3, 0.0, cfg)
    assert adapt_beta(99.0, 1e6, cfg) == cfg.kl_max
    assert adapt_beta(2e-8, 0.0, cfg.replace(kl_adapt_rate=100.0)) == cfg.kl_min


def test_group_advantages_hand_computed():
    """(r − mean)/(std + 1e-4) with the unbiased (n − 1) std, as TRL's GRPO."""
    # mean 0.5; unbiased std = sqrt(4·0.25/3) = 0.5773503 (the biased one would be 0.5)
    a = group_advantages([1.0, 0.0, 1.0, 0.0])
    assert a == pytest.approx([0.5 / (0.5773502691896258 + 1e-4), -0.5 / (0.5773502691896258 + 1e-4)] * 2, rel=1e-12)
    # mean 0.5; deviations −0.4, 0, 0.4; unbiased std = sqrt((0.16 + 0 + 0.16)/2) = 0.4 (biased: 0.327)
    assert group_advantages([0.1, 0.5, 0.9]) == pytest.approx([-0.4 / 0.4001, 0.0, 0.4 / 0.4001], rel=1e-9, abs=1e-12)
    # equal rewards: no spread, the ε keeps it finite and zero
    assert group_advantages([0.5, 0.5]) == [0.0, 0.0]
    assert group_advantages([0.7]) == [0.0]


@pytest.fixture(scope="module")
def fresh(tiny_config):
    from evolmm_lib.backbone import load_backbone
    from conftest import make_images
    from evolmm_lib.images import load_image
    from evolmm_lib.rollout import sample_answers
    import tempfile
    from pathlib import Path

    backbone = load_backbone("tiny", config=tiny_config)
    d = Path(tempfile.mkdtemp())
    image = load_image(make_images(d, 1)[0])
    torch.manual_seed(0)
    samples = sample_answers(backbone, image, "What colour is the square?", tiny_config, num_samples=3)
    return backbone, samples.generation


def _snapshot(params):
    return [p.detach().clone() for p in params]


def test_update_moves_only_its_role(fresh, tiny_config):
    backbone, gen = fresh
    cfg = tiny_config.replace(lr=1e-2)
    solver = RoleUpdater(backbone, "solver", cfg)
    before_s = _snapshot(solver.params)
    before_p = _snapshot(backbone.trainable_parameters("proposer"))
    frozen = [p for n, p in backbone.model.named_parameters() if "lora_" not in n][:5]
    before_f = _snapshot(frozen)
    res = solver.update(gen, [1.0, 0.0, 0.5])
    assert res.optimizer_steps == 1 and res.skipped == 0 and math.isfinite(res.loss)
    assert any(not torch.equal(a, b) for a, b in zip(before_s, solver.params))
    assert all(torch.equal(a, b) for a, b in zip(before_p, backbone.trainable_parameters("proposer")))
    assert all(torch.equal(a, b) for a, b in zip(before_f, frozen))
    # official baseline arithmetic: b after 3 samples from 0
    assert solver.baseline == pytest.approx(0.9 * (0.9 * 0.1 * 1.0) + 0.1 * 0.5)
    # after a step the adapter differs from π_ref: the next update sees KL > 0
    res2 = solver.update(gen, [1.0, 0.0, 0.5])
    assert res2.kl > 0


def test_batched_and_sequential_share_baseline_and_beta(fresh, tiny_config):
    backbone, gen = fresh
    cfg = tiny_config.replace(lr=1e-12)  # parameters barely move: KL stays ~0 in both modes
    out = {}
    for mode in ("batched", "sequential"):
        u = RoleUpdater(backbone, "proposer", cfg.replace(update_mode=mode))
        u.baseline = 0.2
        res = u.update(gen, [0.9, 0.1, 0.4])
        out[mode] = (u.baseline, u.beta, res.optimizer_steps, res.advantages)
    assert out["batched"][2] == 1 and out["sequential"][2] == 3
    assert out["batched"][0] == out["sequential"][0]
    assert out["batched"][1] == pytest.approx(out["sequential"][1], rel=1e-6)
    assert out["batched"][3] == pytest.approx(out["sequential"][3], abs=1e-12)


# --- the loss, pinned against a hand-written copy --------------------------------------------
# The expected loss below is written from the paper's formula with raw model forwards (full logits, no
# chunking, no checkpointing, one row at a time), not from policy.py. Recipe "paper": teacher-forced
# replay of the sampled ids with the image (paper_batch), π_ref = adapters off in eval mode. Another
# recipe swaps the batch builder and π_ref's role; the sums, chains and gradient spy stay the same.

HAND = dict(kl_coef=0.3, kl_target=0.02, kl_adapt_rate=0.1, kl_min=1e-8, kl_max=100.0, baseline_momentum=0.9)


@pytest.fixture(scope="module")
def exact(tiny_config):
    """A backbone without LoRA dropout (so an update is deterministic), its Solver adapter moved off π_ref
    (so KL and its gradient are not zero), and 3 sampled answers of different content."""
    from conftest import make_images
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.images import load_image
    from evolmm_lib.rollout import sample_answers
    import tempfile
    from pathlib import Path

    cfg = tiny_config.replace(lora_dropout=0.0, max_new_tokens_solver=8, **HAND)
    backbone = load_backbone("tiny", config=cfg)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in backbone.trainable_parameters("solver"):
            p.add_(0.05 * torch.randn_like(p))
    image = load_image(make_images(Path(tempfile.mkdtemp()), 1)[0])
    samples = sample_answers(backbone, image, "How many squares are there?", cfg, num_samples=3)
    assert len(set(samples.completions)) > 1
    return backbone, samples.generation, cfg


class restored:
    """Put the role's parameters back after the test block (the fixture is shared)."""

    def __init__(self, params):
        self.params, self.saved = params, [p.detach().clone() for p in params]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with torch.no_grad():
            for p, s in zip(self.params, self.saved):
                p.copy_(s)


def paper_batch(backbone, gen, row):
    """Recipe "paper": the sampled ids replayed after the processor's prompt, image included."""
    from evolmm_lib.logprobs import teacher_forced_batch

    return teacher_forced_batch(gen, [row])


def hand_row_terms(backbone, role, batch, reference_role=None):
    """(mean NLL, mean KL(π‖π_ref)) of a one-row batch, from full-vocabulary logits of raw forwards.

    π_ref is ``backbone.role(reference_role)`` in eval mode (None: adapters off / the frozen copy).
    """
    import torch.nn.functional as F

    t = int(batch.completion_mask[0].sum())
    ids = batch.completion_ids[0, :t]
    start = batch.prompt_len - 1  # the logits at start + j predict completion token j
    with torch.no_grad(), backbone.role(reference_role) as ref:
        ref.eval()
        logp_ref = F.log_softmax(ref(**batch.inputs, use_cache=False).logits[0, start:start + t].float(), -1)
    with backbone.role(role) as model:
        logp = F.log_softmax(model(**batch.inputs, use_cache=False).logits[0, start:start + t].float(), -1)
    nll = -logp[torch.arange(t), ids].mean()
    kl = (logp.exp() * (logp - logp_ref)).sum(-1).mean()
    return nll, kl


class HandChain:
    """The paper's β and b sequences, written out: sample i uses b_{i−1}, β_{i−1}, then both move."""

    def __init__(self, cfg, baseline=0.0, beta=None):
        self.cfg, self.b, self.beta = cfg, baseline, cfg.kl_coef if beta is None else beta

    def take(self, reward, kl):
        used = (reward - self.b, self.beta)
        c = self.cfg
        self.beta = min(c.kl_max, max(c.kl_min, self.beta * math.exp(c.kl_adapt_rate * (kl - c.kl_target) / c.kl_target)))
        self.b = c.baseline_momentum * self.b + (1 - c.baseline_momentum) * reward
        return used


def hand_group(rewards):
    mean = sum(rewards) / len(rewards)
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (len(rewards) - 1))
    return [(r - mean) / (std + 1e-4) for r in rewards]


def spy_on_steps(updater, expected_grads):
    """Record the updater's gradients at each AdamW step, and the hand gradient at the same parameters."""
    seen = []
    real_step = updater.optimizer.step

    def step(*args, **kwargs):
        seen.append(([p.grad.detach().clone() for p in updater.params], expected_grads(len(seen))))
        return real_step(*args, **kwargs)

    updater.optimizer.step = step
    return seen


@pytest.mark.parametrize("mode,advantage", [("batched", "ema"), ("sequential", "ema"), ("batched", "group")])
def test_update_gradient_is_the_hand_written_loss(exact, mode, advantage):
    """∇ of RoleUpdater's loss = ∇ Σ_i A_i·meanNLL_i + β_i·KL_i on the same batch (clip off, one process)."""
    backbone, gen, cfg = exact
    cfg = cfg.replace(update_mode=mode, advantage=advantage, grad_clip=1e9, lr=1e-3)
    rewards = [0.9, 0.2, 0.6]
    u = RoleUpdater(backbone, "solver", cfg)
    u.baseline, u.beta = 0.4, 0.3
    chain = HandChain(cfg, 0.4, 0.3)
    params = u.params
    kl_share = []

    def expected(k):
        rows = [0, 1, 2] if mode == "batched" else [k]
        terms = [hand_row_terms(backbone, "solver", paper_batch(backbone, gen, r)) for r in rows]
        used = [chain.take(rewards[r], kl.item()) for r, (_, kl) in zip(rows, terms)]
        adv = [a for a, _ in used] if advantage == "ema" else [hand_group(rewards)[r] for r in rows]
        pg = sum(a * nll for a, (nll, _) in zip(adv, terms))
        kl_term = sum(beta * kl for (_, beta), (_, kl) in zip(used, terms))
        g_kl = torch.autograd.grad(kl_term, params, retain_graph=True)
        grads = torch.autograd.grad(pg + kl_term, params)
        kl_share.append(math.sqrt(sum(float((g * g).sum()) for g in g_kl)) /
                        math.sqrt(sum(float((g * g).sum()) for g in grads)))
        return [g.detach() for g in grads]

    with restored(params):
        seen = spy_on_steps(u, expected)
        res = u.update(gen, rewards)
    assert res.skipped == 0 and len(seen) == res.optimizer_steps == (1 if mode == "batched" else 3)
    for got, want in seen:
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-7)
    # the KL part is large enough to be seen: dropping it moves the gradient by far more than the tolerance
    assert min(kl_share) > 0.01
    assert (u.baseline, u.beta) == pytest.approx((chain.b, chain.beta), rel=1e-6)
    if advantage == "group":
        assert res.advantages == pytest.approx(hand_group(rewards), rel=1e-9)


def official_batch(backbone, gen, row):
    """Recipe "official": prompt + decoded completion TEXT re-tokenised, only ids and mask (no image)."""
    from evolmm_lib.logprobs import retokenized_batch

    return retokenized_batch(backbone, gen, row)


def test_official_update_gradient_is_the_hand_written_loss(exact):
    """recipe="official": per-sample steps on the re-tokenised text, π_ref = the Solver adapter itself
    (dropout off: the Solver's KL is exactly zero), gradient = ∇ A_i·meanNLL_i + β_i·KL_i per step."""
    backbone, gen, cfg = exact
    cfg = cfg.replace(recipe="official", grad_clip=1e9, lr=1e-3)
    assert cfg.update_loop == "sequential"
    rewards = [0.9, 0.2, 0.6]
    assert all(gen.texts), "every completion must re-tokenise to at least one token"
    u = RoleUpdater(backbone, "solver", cfg)
    u.baseline, u.beta = 0.4, 0.3
    chain = HandChain(cfg, 0.4, 0.3)
    kls, advantages = [], []

    def expected(k):
        nll, kl = hand_row_terms(backbone, "solver", official_batch(backbone, gen, k), reference_role="solver")
        kls.append(kl.item())
        a, beta = chain.take(rewards[k], kl.item())
        advantages.append(a)
        return [g.detach() for g in torch.autograd.grad(a * nll + beta * kl, u.params)]

    with restored(u.params):
        seen = spy_on_steps(u, expected)
        res = u.update(gen, rewards)
    assert res.skipped == 0 and len(seen) == res.optimizer_steps == 3
    for got, want in seen:
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-7)
    assert kls == [0.0] * 3 and res.kl == 0.0  # π_ref is the very adapter being trained
    assert (u.baseline, u.beta) == pytest.approx((chain.b, chain.beta), rel=1e-6)
    assert res.advantages == pytest.approx(advantages, rel=1e-9)



def test_official_proposer_never_steps_but_beta_and_baseline_move(exact):
    """recipe="official": the Proposer's loss, KL(π_prop‖π_solver), β and b are computed; its AdamW never
    steps, so its weights stay exactly as they were."""
    backbone, gen, cfg = exact
    cfg = cfg.replace(recipe="official", grad_clip=1e9, lr=1e-2)
    p = RoleUpdater(backbone, "proposer", cfg)
    p.baseline, p.beta = 0.4, 0.3
    before = _snapshot(p.params)
    stepped = []
    p.optimizer.step = lambda *a, **k: stepped.append(1)
    nll, kl = hand_row_terms(backbone, "proposer", official_batch(backbone, gen, 1), reference_role="solver")
    chain = HandChain(cfg, 0.4, 0.3)
    a, beta = chain.take(0.8, kl.item())
    res = p.update(gen, [0.8], rows=[1])
    assert stepped == [] and res.optimizer_steps == 0 and res.skipped == 0
    assert all(torch.equal(x, y) for x, y in zip(before, p.params))
    assert all(q.grad is None for q in p.params)
    assert kl.item() > 1e-3  # the Proposer adapter differs from the Solver's (the reference)
    assert res.kl == pytest.approx(kl.item(), rel=1e-4)
    assert res.loss == pytest.approx((a * nll + beta * kl).item(), rel=1e-4)
    assert (p.baseline, p.beta) == pytest.approx((chain.b, chain.beta), rel=1e-6)
    assert p.baseline != 0.4 and p.beta != 0.3


def test_positive_advantage_gains_log_probability_negative_loses_it(exact):
    """One update on one completion: A > 0 raises its log π, A < 0 lowers it (KL term off)."""
    backbone, gen, cfg = exact
    cfg = cfg.replace(kl_coef=0.0, kl_min=0.0, lr=1e-3)

    def logp(row):
        """log π(completion) = −mean NLL × its length."""
        with torch.no_grad():
            nll, _ = hand_row_terms(backbone, "solver", paper_batch(backbone, gen, row))
        return -nll.item() * len(gen.completion_ids[row])

    for row, reward in ((0, 1.0), (1, 0.0)):  # baseline 0.5: A = +0.5, then A = −0.5
        u = RoleUpdater(backbone, "solver", cfg)
        u.baseline = 0.5
        with restored(u.params):
            before = logp(row)
            res = u.update(gen, [reward], rows=[row])
            after = logp(row)
        assert res.advantages == pytest.approx([reward - 0.5]) and res.optimizer_steps == 1
        assert (after - before) * (reward - 0.5) > 0, (row, before, after)


def test_nan_reward_skips_update(fresh, tiny_config):
    backbone, gen = fresh
    u = RoleUpdater(backbone, "solver", tiny_config.replace(lr=1e-2))
    before = _snapshot(u.params)
    res = u.update(gen, [float("nan"), 0.0, 1.0])
    assert res.skipped == 1 and res.optimizer_steps == 0
    assert all(torch.equal(a, b) for a, b in zip(before, u.params))
    assert (u.baseline, u.beta) == (0.0, tiny_config.kl_coef)


def test_group_advantage_mode(fresh, tiny_config):
    backbone, gen = fresh
    for mode in ("batched", "sequential"):  # the group is the N rewards, also one sample at a time
        u = RoleUpdater(backbone, "solver", tiny_config.replace(advantage="group", update_mode=mode))
        res = u.update(gen, [1.0, 0.0, 1.0])
        # mean 2/3, unbiased std sqrt(((1/3)² + (2/3)² + (1/3)²)/2) = sqrt(1/3)
        s = math.sqrt(1 / 3) + 1e-4
        assert res.advantages == pytest.approx([(1 / 3) / s, -(2 / 3) / s, (1 / 3) / s], rel=1e-9)
        assert u.baseline == pytest.approx(0.9 * 0.9 * 0.1 + 0.1)  # the ema baseline is still tracked and logged


def test_full_update_mode(tiny_config):
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.rollout import generate
    from PIL import Image

    cfg = tiny_config.replace(update="full", lr=1e-3)
    backbone = load_backbone("tiny", config=cfg)
    gen = generate(backbone, "solver", [Image.new("RGB", (64, 64), "red")], ["Hi?"], num_samples=2, max_new_tokens=6)
    u = RoleUpdater(backbone, "solver", cfg)
    ref_before = _snapshot(list(backbone.reference_model.parameters())[:4])
    before = _snapshot(u.params[:4])
    u.update(gen, [1.0, 0.0])
    assert any(not torch.equal(a, b) for a, b in zip(before, u.params[:4]))
    assert all(torch.equal(a, b) for a, b in zip(ref_before, list(backbone.reference_model.parameters())[:4]))
