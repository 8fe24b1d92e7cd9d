"""Evaluation loads every checkpoint kind the trainer writes: lora, qlora (4-bit base) and full (whole models).

One module fixture trains the tiny model one step per kind; ``load_backbone(model, adapters_from=...)`` with the
default config (as ``evaluate --adapters``, the lmms-eval plugin and notebook 05 call it) must load each as
its kind, with the trained weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import make_images
from evolmm_lib import checkpoint as ckpt
from evolmm_lib.backbone import BackboneError, load_backbone
from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.trainer import EvoLMMTrainer
from test_qlora_cpu import is_4bit, write_chartqa_folder

KINDS = ("lora", "qlora", "full")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """kind -> (the trained backbone, its checkpoint-1 folder)."""
    root = tmp_path_factory.mktemp("kinds")
    make_images(root / "images", 2)
    out = {}
    for kind in KINDS:
        cfg = EvoLMMConfig(update=kind, backend="transformers", data_dir=str(root / "images"),
                           output_dir=str(root / kind), num_solver_samples=2, max_new_tokens_solver=4,
                           max_new_tokens_proposer=4, proposer_update_freq=1, lr=1e-2, total_steps=1, save_every=0)
        backbone = load_backbone(config=cfg)
        EvoLMMTrainer(backbone, cfg).train()
        out[kind] = backbone, Path(cfg.output_dir) / "checkpoint-1"
    return out


def role_weights(backbone, role: str) -> dict[str, torch.Tensor]:
    """What a checkpoint stores for ``role``: its LoRA weights, or its whole model's parameters."""
    if backbone.is_lora:
        return {n.replace(f".{role}.", "."): p for n, p in backbone.model.named_parameters()
                if "lora_" in n and f".{role}." in n}
    return dict(backbone.role_models[role].named_parameters())


@pytest.mark.slow
def test_the_kind_is_read_from_the_trainer_state_and_else_from_the_files(trained, tmp_path):
    for kind in KINDS:
        path = trained[kind][1]
        assert ckpt.checkpoint_kind(path) == kind and ckpt.saved_config(path)["update"] == kind
    assert ckpt.saved_config(tmp_path) is None
    # save_adapters output alone (no trainer state): told apart by the role folders' files
    for kind, expected in (("qlora", "lora"), ("full", "full")):
        bare = tmp_path / kind
        shutil.copytree(trained[kind][1], bare)
        (bare / ckpt.STATE_FILE).unlink()
        assert ckpt.checkpoint_kind(bare) == expected
    # a LoRA run with load_in_4bit set counts as qlora
    state = torch.load(trained["lora"][1] / ckpt.STATE_FILE, weights_only=True)
    state["config"]["load_in_4bit"] = True
    (tmp_path / "four").mkdir()
    torch.save(state, tmp_path / "four" / ckpt.STATE_FILE)
    assert ckpt.checkpoint_kind(tmp_path / "four") == "qlora"
    (tmp_path / "four" / ckpt.STATE_FILE).write_bytes(b"truncated")
    with pytest.raises(ckpt.CheckpointError, match="cannot read the trainer state"):
        ckpt.checkpoint_kind(tmp_path / "four")


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_default_config_loads_each_kind_with_its_trained_weights(trained, kind):
    original, path = trained[kind]
    loaded = load_backbone("tiny", adapters_from=path)  # EvoLMMConfig() says update="lora"
    assert loaded.config.update == kind
    assert loaded.is_lora == (kind != "full") and is_4bit(loaded.model) == (kind == "qlora")
    for role in ("solver", "proposer"):
        mine, theirs = role_weights(loaded, role), role_weights(original, role)
        assert mine.keys() == theirs.keys() and mine
        assert all(torch.equal(mine[n], theirs[n]) for n in mine), role
    if kind == "full":  # the reference stays the untrained base
        assert any(not torch.equal(a, b) for a, b in zip(loaded.reference_model.parameters(),
                                                         loaded.role_models["solver"].parameters()))


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_evaluate_cli_runs_each_kind_as_the_trained_solver(trained, kind, tmp_path, capsys):
    from evolmm_lib.__main__ import main
    from evolmm_lib.evaluation import evaluate
    from evolmm_lib.evaluation.datasets import load_local

    original, path = trained[kind]
    data = write_chartqa_folder(tmp_path / "bench")
    rc = main(["evaluate", "--model", "tiny", "--benchmark", "chartqa", "--data-dir", str(data), "--adapters", str(path),
               "--max-new-tokens", "4", "--output", str(tmp_path / "eval.json"), "--no-progress"])
    assert rc == 0, capsys.readouterr().err[-2000:]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 2
    rows = json.loads((tmp_path / "eval.json").read_text())["rows"]
    ours = evaluate(original, "chartqa", load_local("chartqa", data), max_new_tokens=4, progress=False)
    assert [r["response"] for r in rows] == [r["response"] for r in ours.rows]


@pytest.mark.slow
def test_load_in_4bit_asks_for_a_4bit_base_and_refuses_a_full_checkpoint(trained, tmp_path, capsys):
    from evolmm_lib.__main__ import main

    original, path = trained["lora"]
    four = load_backbone("tiny", config=EvoLMMConfig(load_in_4bit=True), adapters_from=path)
    assert is_4bit(four.model) and four.config.update == "lora"
    assert all(torch.equal(a, role_weights(original, "solver")[n]) for n, a in role_weights(four, "solver").items())
    data = write_chartqa_folder(tmp_path / "bench", 1)
    rc = main(["evaluate", "--model", "tiny", "--benchmark", "chartqa", "--data-dir", str(data), "--adapters",
               str(trained["full"][1]), "--load-in-4bit", "--max-new-tokens", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "error:" in err and "full checkpoint" in err


@pytest.mark.slow
def test_a_full_checkpoint_missing_its_weights_is_a_clear_error(trained, tmp_path):
    broken = tmp_path / "checkpoint-1"
    shutil.copytree(trained["full"][1], broken)
    (broken / "proposer" / "model.safetensors").unlink()
    with pytest.raises(BackboneError, match="proposer: no model.safetensors"):
        load_backbone("tiny", adapters_from=broken)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ("qlora", "full"))
def test_lmms_eval_plugin_loads_qlora_and_full_checkpoints(trained, kind):
    from evolmm_lib.evaluation.lmms_eval_plugin import EvoLMM

    model = EvoLMM(pretrained="tiny", adapter=str(trained[kind][1]), batch_size=2)
    assert model.role_name == "solver" and model.backbone.config.update == kind
    assert model.backbone.is_lora == (kind == "qlora") and is_4bit(model.backbone.model) == (kind == "qlora")
