"""Teacher-forced log-probs equal generate's scores (with mm_token_type_ids); chunked KL is exact."""

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from evolmm_lib.backbone import load_backbone
from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.logprobs import (completion_logprobs_and_kl, reference_outputs, teacher_forced_batch)
from evolmm_lib.rollout import generate


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from conftest import make_images

    paths = make_images(tmp_path_factory.mktemp("img"), n=2)
    images = [Image.open(p).convert("RGB") for p in paths]
    bb = load_backbone("tiny", config=EvoLMMConfig())
    torch.manual_seed(0)
    # prompts of different lengths -> left padding in the batch
    gen = generate(bb, "solver", images, ["short", "a much longer question about the bars"], num_samples=2,
                   max_new_tokens=12, output_logits=True)
    return bb, gen


def _generate_logprobs(gen):
    logp = F.log_softmax(gen.logits.float(), dim=-1)
    return [logp[i, torch.arange(len(ids)), torch.tensor(ids)] for i, ids in enumerate(gen.completion_ids)]


def test_teacher_forced_logprobs_match_generate(setup):
    bb, gen = setup
    batch = teacher_forced_batch(gen)
    with torch.no_grad(), bb.role("solver") as m:
        lp, _ = completion_logprobs_and_kl(m, batch, chunk_size=5)
    for i, ref in enumerate(_generate_logprobs(gen)):
        assert torch.allclose(lp[i, : len(ref)], ref, atol=1e-4), (lp[i, : len(ref)], ref)
        assert torch.all(lp[i, len(ref):] == 0)


def test_without_mm_token_type_ids_the_logprobs_are_wrong(setup):
    bb, gen = setup
    batch = teacher_forced_batch(gen)
    batch.inputs.pop("mm_token_type_ids")
    with torch.no_grad(), bb.role("solver") as m:
        lp, _ = completion_logprobs_and_kl(m, batch)
    diffs = [(lp[i, : len(r)] - r).abs().max().item() for i, r in enumerate(_generate_logprobs(gen))]
    assert max(diffs) > 1e-3  # the 1-D position fallback is silently different


def test_row_subset_selects_matching_pixels(setup):
    bb, gen = setup
    full = teacher_forced_batch(gen)
    sub = teacher_forced_batch(gen, rows=[3])
    with torch.no_grad(), bb.role("solver") as m:
        a, _ = completion_logprobs_and_kl(m, full)
        b, _ = completion_logprobs_and_kl(m, sub)
    n = len(gen.completion_ids[3])
    assert torch.allclose(a[3, :n], b[0, :n], atol=1e-4)


def test_chunked_kl_equals_dense_kl_and_gradients_flow(setup):
    bb, gen = setup
    with torch.no_grad():
        for p in bb.trainable_parameters("solver"):
            p.add_(0.02 * torch.randn_like(p))
    batch = teacher_forced_batch(gen)
    ref = reference_outputs(bb, batch)
    with bb.role("solver") as m:
        lp4, kl4 = completion_logprobs_and_kl(m, batch, ref, chunk_size=4)
        lp_all, kl_all = completion_logprobs_and_kl(m, batch, ref, chunk_size=10_000)
        (kl4.sum() - lp4.sum()).backward()
    assert torch.allclose(kl4, kl_all, atol=1e-6) and torch.allclose(lp4, lp_all, atol=1e-6)
    assert (kl4 >= -1e-6).all() and kl4.sum() > 0
    # dense reference computation of the KL
    from evolmm_lib.logprobs import causal_lm, completion_hidden
    with torch.no_grad(), bb.role("solver") as m:
        head = causal_lm(m).lm_head
        lp_pi = F.log_softmax(head(completion_hidden(m, batch)), -1)
        lp_ref = F.log_softmax(head(ref.hidden), -1)
        dense = (lp_pi.exp() * (lp_pi - lp_ref)).sum(-1) * batch.completion_mask
    assert torch.allclose(kl4, dense, atol=1e-5)
    grads = [p.grad for p in bb.trainable_parameters("solver")]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None for p in bb.trainable_parameters("proposer"))


def test_full_update_reference_uses_the_frozen_copy_own_head():
    """update="full": the policy's head is trainable; π_ref's log-probs must be the frozen copy's own."""
    from conftest import make_images
    import tempfile
    from pathlib import Path

    images = [Image.open(p).convert("RGB") for p in make_images(Path(tempfile.mkdtemp()), n=1)]
    bb = load_backbone("tiny", config=EvoLMMConfig(update="full"))
    torch.manual_seed(0)
    gen = generate(bb, "solver", images, ["how many bars?"], num_samples=2, max_new_tokens=8)
    with torch.no_grad():  # a trained head: what a few full-update steps do to the policy's lm_head
        from evolmm_lib.logprobs import causal_lm
        causal_lm(bb.role_models["solver"]).lm_head.weight.add_(0.5 * torch.randn_like(
            causal_lm(bb.role_models["solver"]).lm_head.weight))
    batch = teacher_forced_batch(gen)
    ref = reference_outputs(bb, batch)
    with torch.no_grad(), bb.role("solver") as m:
        lp_pi, kl = completion_logprobs_and_kl(m, batch, ref)
    # the frozen model run on its own, end to end (its forward, its head)
    with torch.no_grad():
        logits = bb.reference_model(**batch.inputs, use_cache=False).logits
        t = batch.completion_ids.shape[1]
        lp_ref_alone = F.log_softmax(logits[:, batch.prompt_len - 1: batch.prompt_len - 1 + t].float(), -1)
        ref_tok = lp_ref_alone.gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1) * batch.completion_mask
        logits_pi = bb.role_models["solver"](**batch.inputs, use_cache=False).logits
        lp_pi_full = F.log_softmax(logits_pi[:, batch.prompt_len - 1: batch.prompt_len - 1 + t].float(), -1)
        dense = (lp_pi_full.exp() * (lp_pi_full - lp_ref_alone)).sum(-1) * batch.completion_mask
        ref_lp = F.log_softmax(F.linear(ref.hidden, ref.weight, ref.bias).float(), -1)
        ref_lp_tok = ref_lp.gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1) * batch.completion_mask
    assert torch.allclose(ref_lp_tok, ref_tok, atol=1e-4)
    assert torch.allclose(kl, dense, atol=1e-4), (kl, dense)
