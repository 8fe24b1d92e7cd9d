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


def test_group_advantages():
    a = group_advantages([1.0, 0.0, 1.0, 0.0])
    assert sum(a) == pytest.approx(0.0) and a[0] > 0 > a[1]
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


def test_batched_gradient_is_sum_of_per_sample_gradients(fresh, tiny_config):
    """One backward of Σ_i A_i·NLL_i equals the sum of the N per-sample backward passes at θ0."""
    from evolmm_lib.logprobs import completion_logprobs_and_kl, teacher_forced_batch

    backbone, gen = fresh
    params = backbone.trainable_parameters("solver")
    adv = [0.5, -1.0, 0.25]

    def grads(rows):
        batch = teacher_forced_batch(gen, rows)
        with backbone.role("solver") as m:
            logp, _ = completion_logprobs_and_kl(m, batch)
        nll = -logp.sum(1) / batch.completion_mask.sum(1)
        (torch.tensor([adv[r] for r in rows]) * nll).sum().backward()
        g = [p.grad.clone() for p in params]
        for p in params:
            p.grad = None
        return g

    together = grads([0, 1, 2])
    apart = [grads([i]) for i in range(3)]
    for j, g in enumerate(together):
        torch.testing.assert_close(g, apart[0][j] + apart[1][j] + apart[2][j], rtol=1e-4, atol=1e-6)


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
        assert res.advantages == pytest.approx(group_advantages([1.0, 0.0, 1.0]))
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
