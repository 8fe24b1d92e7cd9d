"""Real-shape dry runs (``random:<preset>[@L]``): the shapes, the names, and a full-budget generate on CPU."""

from __future__ import annotations

import pytest
import torch

from evolmm_lib import random_presets
from evolmm_lib.backbone import BackboneError, resolve_model
from evolmm_lib.tiny_model import SPECIAL_TOKENS

IDS = {t: i for i, t in enumerate(SPECIAL_TOKENS)}


@pytest.mark.parametrize("preset, params", [
    ("qwen2.5-vl-3b", 3_754_622_976),   # the hub checkpoint's parameter count (3.75B)
    ("qwen2.5-vl-7b", 8_292_166_656),   # 8.29B
    ("qwen2.5-vl-72b", 73_410_777_344),  # 73.4B
])
def test_full_shapes_have_the_checkpoints_parameter_counts(preset, params):
    from transformers import Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(random_presets.build_config(f"random:{preset}", IDS))
    assert sum(p.numel() for p in model.parameters()) == params


def test_reduced_depth_keeps_widths_and_cuts_both_towers():
    cfg = random_presets.build_config("random:qwen2.5-vl-7b@2", IDS)
    assert (cfg.text_config.num_hidden_layers, cfg.vision_config.depth) == (2, 2)
    assert cfg.vision_config.fullatt_block_indexes == [1]
    assert (cfg.text_config.hidden_size, cfg.text_config.vocab_size, cfg.vision_config.out_hidden_size) == (3584, 152064, 3584)
    assert cfg.image_token_id == IDS["<|image_pad|>"]


@pytest.mark.parametrize("name", ["random:qwen2.5-vl-9b", "random:qwen2.5-vl-7b@0", "random:qwen2.5-vl-7b@x", "random:"])
def test_bad_names_are_one_clear_error(name):
    with pytest.raises(BackboneError, match="random"):
        resolve_model(name)


def test_resolve_passes_random_names_through():
    assert resolve_model("random:qwen2.5-vl-3b@1") == "random:qwen2.5-vl-3b@1"


@pytest.mark.slow
def test_random_backbone_generates_the_full_budget_and_steps(tmp_path):
    """One trainer step on random:qwen2.5-vl-3b@1: every completion is exactly max_new_tokens long."""
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.images import ImagePool
    from evolmm_lib.trainer import EvoLMMTrainer

    from conftest import make_images

    cfg = EvoLMMConfig(max_new_tokens_solver=6, max_new_tokens_proposer=5, num_solver_samples=2, save_every=0,
                       max_image_pixels=112 * 112, output_dir=str(tmp_path / "run"))
    bb = load_backbone("random:qwen2.5-vl-3b@1", config=cfg)
    assert bb.model.config.text_config.vocab_size == 151936 and bb.backend == "transformers"
    make_images(tmp_path / "img", 2)
    trainer = EvoLMMTrainer(bb, cfg, pool=ImagePool(str(tmp_path / "img")))
    (rec,) = trainer.step()
    assert rec["generated_tokens"] == 5 + 2 * 6
    assert rec["loss_solver"] == rec["loss_solver"]  # finite update ran
