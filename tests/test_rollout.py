"""Rollout: batched proposals, N solver samples in ONE generate call, no vision tokens sampled."""

import pytest
from PIL import Image

from evolmm_lib.rollout import (generate, propose_questions, sample_answers, suppressed_token_ids)


@pytest.fixture
def images(image_dir):
    return [Image.open(p).convert("RGB") for p in sorted(image_dir.iterdir())]


def _count_generate_calls(monkeypatch, model):
    calls = []
    original = model.generate

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", counting)
    return calls


def test_n_solver_samples_in_one_generate_call(tiny_backbone, tiny_config, images, monkeypatch):
    calls = _count_generate_calls(monkeypatch, tiny_backbone.model)
    s = sample_answers(tiny_backbone, images[0], "How many squares?", tiny_config)
    assert calls == [5]
    assert len(s.completions) == len(s.answers) == len(s.normalized) == 5
    assert s.generation.prompt_inputs["image_grid_thw"].shape[0] == 5
    n_patches = int(s.generation.prompt_inputs["image_grid_thw"][0].prod())
    assert s.generation.prompt_inputs["pixel_values"].shape[0] == 5 * n_patches
    assert all(a for a in s.answers)  # parse fallbacks never leave an answer empty on tag-less text


def test_proposals_for_a_batch_in_one_call(tiny_backbone, tiny_config, images, monkeypatch):
    calls = _count_generate_calls(monkeypatch, tiny_backbone.model)
    proposals, gen = propose_questions(tiny_backbone, images, tiny_config)
    assert calls == [len(images)] and len(proposals) == len(images)
    assert all(p.question and "\n" not in p.question for p in proposals)


def test_completions_stop_at_end_of_turn_and_never_hold_vision_tokens(tiny_backbone, images):
    gen = generate(tiny_backbone, "solver", images[:2], ["a", "b"], num_samples=4, max_new_tokens=24)
    banned = set(suppressed_token_ids(tiny_backbone))
    assert banned and len(gen.completion_ids) == 8
    ends = set(tiny_backbone.model.generation_config.eos_token_id)
    for ids in gen.completion_ids:
        assert not banned & set(ids)
        assert all(t not in ends for t in ids[:-1])


def test_greedy_is_deterministic_and_sampling_is_seeded(tiny_backbone, images):
    import torch

    g1 = generate(tiny_backbone, None, images[:2], ["q", "q"], do_sample=False, max_new_tokens=8)
    g2 = generate(tiny_backbone, None, images[:2], ["q", "q"], do_sample=False, max_new_tokens=8)
    assert g1.completion_ids == g2.completion_ids
    torch.manual_seed(3)
    s1 = generate(tiny_backbone, "solver", images[:1], ["q"], num_samples=3, max_new_tokens=8)
    torch.manual_seed(3)
    s2 = generate(tiny_backbone, "solver", images[:1], ["q"], num_samples=3, max_new_tokens=8)
    assert s1.completion_ids == s2.completion_ids


def test_mismatched_batch_is_a_clear_error(tiny_backbone, images):
    with pytest.raises(ValueError, match="2 images for 1 prompts"):
        generate(tiny_backbone, "solver", images[:2], ["x"], num_samples=1)
