"""Teacher-forced log-probs equal generate's scores (with mm_token_type_ids); chunked KL is exact."""

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from evolmm_lib.backbone import load_backbone
from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.logprobs import (completion_logprobs_and_kl, reference_hidden, teacher_forced_batch)
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
    ref_h = reference_hidden(bb, batch)
    with bb.role("solver") as m:
        lp4, kl4 = completion_logprobs_and_kl(m, batch, ref_h, chunk_size=4)
        lp_all, kl_all = completion_logprobs_and_kl(m, batch, ref_h, chunk_size=10_000)
        (kl4.sum() - lp4.sum()).backward()
    assert torch.allclose(kl4, kl_all, atol=1e-6) and torch.allclose(lp4, lp_all, atol=1e-6)
    assert (kl4 >= -1e-6).all() and kl4.sum() > 0
    # dense reference computation of the KL
    from evolmm_lib.logprobs import causal_lm, completion_hidden
    with torch.no_grad(), bb.role("solver") as m:
        head = causal_lm(m).lm_head
        lp_pi = F.log_softmax(head(completion_hidden(m, batch)), -1)
        lp_ref = F.log_softmax(head(ref_h), -1)
        dense = (lp_pi.exp() * (lp_pi - lp_ref)).sum(-1) * batch.completion_mask
    assert torch.allclose(kl4, dense, atol=1e-5)
    grads = [p.grad for p in bb.trainable_parameters("solver")]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None for p in bb.trainable_parameters("proposer"))
