"""Backbone loader: presets, backends, LoRA roles on the language model only, reference = adapters off."""

import logging
from pathlib import Path

import pytest
import torch
from PIL import Image

from evolmm_lib.backbone import (PRESETS, BackboneError, choose_backend, load_backbone, resolve_model)
from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.logprobs import completion_hidden, teacher_forced_batch
from evolmm_lib.rollout import generate


def test_presets_and_unknown_names():
    assert set(PRESETS) == {"tiny", "miniature", "qwen2.5-vl-3b", "qwen2.5-vl-7b", "qwen2.5-vl-72b"}
    assert (Path(resolve_model("miniature")) / "evolmm_warmstart.json").is_file()  # the shipped warm start
    assert resolve_model("qwen2.5-vl-7b") == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert resolve_model("Qwen/Qwen2.5-VL-3B-Instruct") == "Qwen/Qwen2.5-VL-3B-Instruct"
    with pytest.raises(BackboneError) as e:
        resolve_model("qwen-7b-please")
    for name in PRESETS:
        assert name in str(e.value)


def test_unsloth_backend_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(BackboneError, match="needs a CUDA GPU"):
        choose_backend("unsloth")
    assert choose_backend("auto") == "transformers"
    with pytest.raises(BackboneError, match="needs a CUDA GPU"):
        load_backbone("tiny", backend="unsloth")


def test_qlora_without_bitsandbytes_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if not installed: import fails
    with pytest.raises(BackboneError, match="needs bitsandbytes.*qlora"):
        load_backbone("tiny", config=EvoLMMConfig(update="qlora", backend="transformers"))


def test_two_named_adapters_on_language_model_only(tiny_config):
    bb = load_backbone("tiny", config=tiny_config)  # fresh: role switches elsewhere freeze the inactive adapter
    assert bb.backend == "transformers" and bb.is_lora
    peft_cfgs = bb.model.peft_config
    assert set(peft_cfgs) == {"solver", "proposer"}
    lora_names = [n for n, _ in bb.model.named_parameters() if "lora_" in n]
    assert lora_names and not [n for n in lora_names if "visual" in n]
    targets = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in lora_names}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    trainable = {n for n, p in bb.model.named_parameters() if p.requires_grad}
    assert trainable == set(lora_names)
    s = bb.parameter_summary()
    assert s["solver"] == s["proposer"] > 0 and s["vision"] > 0
    assert not {id(p) for p in bb.trainable_parameters("solver")} & {id(p) for p in bb.trainable_parameters("proposer")}


def test_log_says_which_backend(caplog):
    with caplog.at_level(logging.INFO, logger="evolmm"):
        load_backbone("tiny", config=EvoLMMConfig(max_new_tokens_solver=4))
    assert "via transformers backend" in caplog.text


def _solver_hidden(bb, role, gen):
    batch = teacher_forced_batch(gen)
    with torch.no_grad(), bb.role(role) as m:
        return completion_hidden(m, batch)


def test_roles_differ_and_reference_is_the_base(tmp_path, image_dir):
    bb = load_backbone("tiny", config=EvoLMMConfig(max_new_tokens_solver=6))
    img = Image.open(next(image_dir.iterdir())).convert("RGB")
    gen = generate(bb, "solver", [img], ["What colour?"], max_new_tokens=6)
    base = _solver_hidden(bb, None, gen)
    assert torch.equal(base, _solver_hidden(bb, "solver", gen))  # LoRA B starts at zero
    with torch.no_grad():
        for p in bb.trainable_parameters("solver"):
            p.add_(0.05 * torch.randn_like(p))
    assert not torch.allclose(base, _solver_hidden(bb, "solver", gen))
    assert torch.equal(base, _solver_hidden(bb, None, gen))       # reference: adapters disabled
    assert torch.equal(base, _solver_hidden(bb, "proposer", gen))  # proposer untouched
    with pytest.raises(ValueError, match="role must be"):
        with bb.role("judge"):
            pass

    bb.save_adapters(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "solver" / "adapter_config.json").is_file()
    assert (tmp_path / "ckpt" / "proposer" / "adapter_config.json").is_file()
    again = load_backbone("tiny", config=EvoLMMConfig(max_new_tokens_solver=6), adapters_from=tmp_path / "ckpt")
    assert torch.allclose(_solver_hidden(bb, "solver", gen), _solver_hidden(again, "solver", gen), atol=1e-6)
    with pytest.raises(BackboneError, match="adapter_config.json"):
        load_backbone("tiny", adapters_from=tmp_path)


def test_full_update_keeps_a_frozen_reference(image_dir):
    bb = load_backbone("tiny", config=EvoLMMConfig(update="full", max_new_tokens_solver=4))
    assert not bb.is_lora
    solver_params = bb.trainable_parameters("solver")
    assert solver_params and all(p.requires_grad for p in solver_params)
    assert not any(p.requires_grad for p in bb.reference_model.parameters())
    with bb.role("solver") as s, bb.role("proposer") as p, bb.role(None) as r:
        assert len({id(s), id(p), id(r)}) == 3
