"""Several images per step: row i·N + j of the Solver's one generate carries image i and question i, in
what the model receives (pixel values, grid rows, prompt tokens) when sampling and when the update replays it."""

from __future__ import annotations

import torch
from PIL import Image

from conftest import make_images
from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.images import load_image
from evolmm_lib.logprobs import causal_lm, teacher_forced_batch
from evolmm_lib.rollout import build_solver_prompt, encode_prompts, sample_answer_groups
from evolmm_lib.trainer import EvoLMMTrainer

N = 3


def pixels_per_row(inputs: dict) -> list[torch.Tensor]:
    """The flat ``pixel_values`` split into one block per row (``image_grid_thw`` gives each row's patches)."""
    sizes = inputs["image_grid_thw"].prod(dim=-1).tolist()
    return list(torch.split(inputs["pixel_values"], sizes))


def own_pixels(backbone, image) -> torch.Tensor:
    """The processor's patches of ``image`` alone."""
    return encode_prompts(backbone, [image], ["x"])["pixel_values"]


def distinct_images(sizes=((112, 112), (140, 84))) -> list[Image.Image]:
    """Two images that differ in content and in patch grid."""
    out = []
    for k, (w, h) in enumerate(sizes):
        im = Image.new("RGB", (w, h), ("navy", "gold")[k])
        im.putpixel((k, k), (255, 0, 0))
        out.append(im)
    return out


def spy_model_inputs(monkeypatch, backbone) -> tuple[list[dict], list[dict]]:
    """Inputs of every ``generate`` call, and of every forward of the language model with pixels (the
    update's teacher-forced pass and π_ref's)."""
    generated, forwarded, sampling = [], [], [False]
    real_generate = backbone.model.generate
    inner = causal_lm(backbone.model).model
    real_forward = inner.forward

    def generate(*args, **kwargs):
        generated.append({k: v.clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)})
        sampling[0] = True
        try:
            return real_generate(*args, **kwargs)
        finally:
            sampling[0] = False

    def forward(*args, **kwargs):
        if kwargs.get("pixel_values") is not None and not sampling[0]:
            forwarded.append({k: v.clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)})
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(backbone.model, "generate", generate)
    monkeypatch.setattr(inner, "forward", forward)
    return generated, forwarded


def check_rows(backbone, inputs, images, questions, n):
    blocks = pixels_per_row(inputs)
    assert len(blocks) == len(images) * n
    for i, (image, question) in enumerate(zip(images, questions)):
        want = own_pixels(backbone, image)
        for j in range(n):
            row = i * n + j
            assert torch.equal(blocks[row], want), (i, j)
            text = backbone.tokenizer.decode(inputs["input_ids"][row], skip_special_tokens=True)
            assert question in text, (i, j, text[-80:])


def test_sampled_rows_and_groups_carry_their_own_image(tmp_path, tiny_backbone, monkeypatch):
    images = distinct_images()
    questions = ["Which colour is the square?", "Is there a red dot?"]
    generated, _ = spy_model_inputs(monkeypatch, tiny_backbone)
    cfg = EvoLMMConfig(num_solver_samples=N, max_new_tokens_solver=4)
    groups = sample_answer_groups(tiny_backbone, images, questions, cfg)
    (inputs,) = generated
    check_rows(tiny_backbone, inputs, images, questions, N)
    gen = groups[0].generation
    for i, g in enumerate(groups):
        assert g.question == questions[i]
        assert g.completions == gen.texts[i * N:(i + 1) * N]
        assert gen.prompts[i * N:(i + 1) * N] == [build_solver_prompt(questions[i])] * N
        assert all(im is images[i] for im in gen.images[i * N:(i + 1) * N])
    # the update's replay of any subset of rows keeps each row's own image
    for rows in ([0, N], [2 * N - 1, 0], list(range(2 * N))):
        batch = teacher_forced_batch(gen, rows)
        blocks = pixels_per_row(batch.inputs)
        for block, r in zip(blocks, rows):
            assert torch.equal(block, own_pixels(tiny_backbone, images[r // N]))


def test_trainer_step_with_two_images_feeds_each_row_its_image(tmp_path, tiny_backbone, monkeypatch):
    pool = tmp_path / "pool"
    make_images(pool, 4)
    cfg = EvoLMMConfig(data_dir=str(pool), output_dir=str(tmp_path / "run"), images_per_step=2, num_solver_samples=N,
                       max_new_tokens_solver=4, max_new_tokens_proposer=6, proposer_update_freq=1, save_every=0)
    generated, forwarded = spy_model_inputs(monkeypatch, tiny_backbone)
    records = EvoLMMTrainer(tiny_backbone, cfg).step()
    images = [load_image(r["image"]) for r in records]
    assert len({r["image"] for r in records}) == 2
    proposer_inputs, solver_inputs = generated
    check_rows(tiny_backbone, solver_inputs, images, [r["question"] for r in records], N)
    for i, image in enumerate(images):  # the Proposer's rows: one per image, same order
        assert torch.equal(pixels_per_row(proposer_inputs)[i], own_pixels(tiny_backbone, image))
    # the Solver update (π and π_ref forwards) sees the B×N rows with the same images, in the same order
    solver_forwards = [f for f in forwarded if f["image_grid_thw"].shape[0] == 2 * N]
    assert solver_forwards
    for f in solver_forwards:
        blocks = pixels_per_row(f)
        for row, block in enumerate(blocks):
            assert torch.equal(block, own_pixels(tiny_backbone, images[row // N])), row
    for i, r in enumerate(records):
        assert r["image_index"] == i and len(r["solver_completions"]) == N
