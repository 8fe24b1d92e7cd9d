"""Where a sampled row ends: at its first end-of-turn token, which it keeps, and which the update trains on.

The tiny model's weights are random, so a row meets one of its two end tokens at random: with 300 new
tokens and this seed, some rows stop (on either end id) and some run to the budget.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from conftest import make_images
from evolmm_lib.logprobs import completion_logprobs_and_kl, teacher_forced_batch
from evolmm_lib.rollout import end_token_ids, generate

BUDGET = 300


@pytest.fixture(scope="module")
def sampled(tiny_backbone, tmp_path_factory):
    """A Generation and the raw new tokens ``model.generate`` returned for each row."""
    images = [Image.open(p).convert("RGB") for p in make_images(tmp_path_factory.mktemp("img"), 2)]
    raw = []
    real = tiny_backbone.model.generate

    def spying(*args, **kwargs):
        out = real(*args, **kwargs)
        raw.extend(out.sequences[:, kwargs["input_ids"].shape[1]:].tolist())
        return out

    tiny_backbone.model.generate = spying
    try:
        torch.manual_seed(0)
        gen = generate(tiny_backbone, "solver", images, ["short", "a longer question"], num_samples=3,
                       max_new_tokens=BUDGET)
    finally:
        del tiny_backbone.model.generate
    return gen, raw, end_token_ids(tiny_backbone)


def test_rows_are_cut_after_their_first_end_token(sampled):
    gen, raw, ends = sampled
    stopped = [r for r, row in enumerate(raw) if any(t in ends for t in row)]
    assert stopped and len(stopped) < len(raw)  # both kinds of row are present
    assert {raw[r][len(gen.completion_ids[r]) - 1] for r in stopped} == set(ends)  # both end ids met
    for r, row in enumerate(raw):
        ids = gen.completion_ids[r]
        if r in stopped:
            first = next(i for i, t in enumerate(row) if t in ends)
            assert ids == row[: first + 1]  # the end token kept, nothing after it
            assert ids[-1] in ends and not set(ids[:-1]) & set(ends)
        else:
            assert ids == row and len(ids) == BUDGET


def test_text_is_decoded_from_the_kept_ids_only(sampled, tiny_backbone):
    gen, raw, ends = sampled
    for r, ids in enumerate(gen.completion_ids):
        assert gen.texts[r] == tiny_backbone.tokenizer.decode(ids, skip_special_tokens=True).strip()


def test_the_update_trains_on_every_kept_token_including_the_end(sampled, tiny_backbone):
    gen, _, ends = sampled
    batch = teacher_forced_batch(gen)
    prompt_len = gen.prompt_inputs["input_ids"].shape[1]
    with torch.no_grad(), tiny_backbone.role("solver") as model:
        logp, _ = completion_logprobs_and_kl(model, batch)
    for r, ids in enumerate(gen.completion_ids):
        n = len(ids)
        assert batch.completion_ids[r, :n].tolist() == ids and not batch.completion_ids[r, n:].any()
        assert batch.completion_mask[r].tolist() == [1.0] * n + [0.0] * (batch.completion_ids.shape[1] - n)
        assert batch.inputs["input_ids"][r, prompt_len: prompt_len + n].tolist() == ids
        assert batch.inputs["attention_mask"][r, prompt_len: prompt_len + n].all()
        assert not batch.inputs["attention_mask"][r, prompt_len + n:].any()
        assert (logp[r, :n] < 0).all() and not logp[r, n:].any()  # the end token's log-prob is in the loss
