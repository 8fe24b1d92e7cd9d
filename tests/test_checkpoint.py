"""Checkpoints: atomic save, keep last K, PEFT-loadable adapters, SIGKILL + resume bit-identical."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import REPO, make_images
from evolmm_lib import checkpoint as ckpt
from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.trainer import EvoLMMTrainer


def small_config(tmp_path: Path, **kw) -> EvoLMMConfig:
    make_images(tmp_path / "images", 3)
    base = dict(data_dir=str(tmp_path / "images"), output_dir=str(tmp_path / "run"), num_solver_samples=3,
                max_new_tokens_solver=8, max_new_tokens_proposer=8, lr=1e-2, proposer_update_freq=2,
                total_steps=4, save_every=2, max_checkpoints=2)
    return EvoLMMConfig(**{**base, **kw})


def test_save_keeps_last_k_and_failure_leaves_previous(tmp_path, tiny_backbone, monkeypatch):
    cfg = small_config(tmp_path, save_every=1, max_checkpoints=2)
    tr = EvoLMMTrainer(tiny_backbone, cfg)
    for _ in range(3):
        tr.step()
    names = sorted(p.name for p in ckpt.checkpoints(cfg.output_dir))
    assert names == ["checkpoint-2", "checkpoint-3"]
    before = {p.name: p.read_bytes() for p in (Path(cfg.output_dir) / "checkpoint-3").rglob("*") if p.is_file()}

    def broken_save(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        tr.step()  # step 4 tries to save
    monkeypatch.undo()
    assert sorted(p.name for p in Path(cfg.output_dir).iterdir() if "checkpoint" in p.name) == names
    after = {p.name: p.read_bytes() for p in (Path(cfg.output_dir) / "checkpoint-3").rglob("*") if p.is_file()}
    assert after == before
    assert ckpt.latest_checkpoint(cfg.output_dir).name == "checkpoint-3"


def test_checkpoint_adapters_load_with_peft_and_load_backbone(tmp_path, tiny_backbone):
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from evolmm_lib.backbone import load_backbone, resolve_model

    cfg = small_config(tmp_path, total_steps=2)
    tr = EvoLMMTrainer(tiny_backbone, cfg)
    tr.train()
    path = Path(cfg.output_dir) / "checkpoint-2"
    state = ckpt.load_state(path)
    assert state["step"] == 2 and state["pool"]["position"] == 2 and "rng" in state
    assert set(state["solver"]) == {"optimizer", "beta", "baseline"}
    base = AutoModelForImageTextToText.from_pretrained(resolve_model("tiny"))
    peft = PeftModel.from_pretrained(base, path / "solver")
    name = next(n for n in dict(peft.named_parameters()) if "lora_B" in n)
    trained = dict(tiny_backbone.model.named_parameters())[name.replace(".default.", ".solver.")]
    torch.testing.assert_close(dict(peft.named_parameters())[name], trained, rtol=0, atol=0)
    reloaded = load_backbone("tiny", config=cfg, adapters_from=path)
    for role in ("solver", "proposer"):
        for a, b in zip(reloaded.trainable_parameters(role), tiny_backbone.trainable_parameters(role)):
            assert torch.equal(a, b)


CHILD = textwrap.dedent("""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.trainer import EvoLMMTrainer, train
    cfg = EvoLMMConfig.from_yaml(sys.argv[1])
    mode = sys.argv[2]
    if mode == "kill":  # die by SIGKILL in the middle of the run, after checkpoint-2 and a logged step 3
        step = EvoLMMTrainer.step
        def step_then_die(self):
            rec = step(self)
            if self.global_step == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return rec
        EvoLMMTrainer.step = step_then_die
    train(cfg, resume=(mode == "resume"))
""")


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(cfg: EvoLMMConfig, mode: str) -> subprocess.CompletedProcess:
        path = Path(cfg.output_dir).parent / f"{Path(cfg.output_dir).name}.yaml"
        cfg.save_yaml(path)
        return subprocess.run([sys.executable, str(script), str(path), mode], env=env, capture_output=True,
                              text=True, timeout=600, cwd=str(REPO))

    # k=3: checkpoint-2 is written while questions for step 3 are still queued (batched Proposer)
    straight = small_config(tmp_path, output_dir=str(tmp_path / "straight"), proposer_update_freq=3)
    killed = straight.replace(output_dir=str(tmp_path / "killed"))
    r = run(straight, "fresh")
    assert r.returncode == 0, r.stderr[-2000:]
    r = run(killed, "kill")
    assert r.returncode == -9, r.stderr[-2000:]
    assert ckpt.latest_checkpoint(killed.output_dir).name == "checkpoint-2"
    assert len((Path(killed.output_dir) / "log.jsonl").read_text().splitlines()) == 3  # step 3 logged, then killed
    # the trainer state is plain data: it loads without unpickling objects, queued questions included
    state = torch.load(Path(killed.output_dir) / "checkpoint-2" / ckpt.STATE_FILE, weights_only=True)
    queue = state["proposer_queue"]
    assert queue["next"] == 2 and len(queue["paths"]) == len(queue["proposals"]) == len(queue["gen"]["texts"]) == 3
    assert all(isinstance(v, torch.Tensor) for v in queue["gen"]["prompt_inputs"].values())
    r = run(killed, "resume")
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = Path(straight.output_dir) / "checkpoint-4", Path(killed.output_dir) / "checkpoint-4"
    for role in ("solver", "proposer"):
        assert (a / role / "adapter_model.safetensors").read_bytes() == (b / role / "adapter_model.safetensors").read_bytes()
    sa, sb = ckpt.load_state(a), ckpt.load_state(b)
    assert (sa["solver"]["beta"], sa["solver"]["baseline"]) == (sb["solver"]["beta"], sb["solver"]["baseline"])
    logs_a = (Path(straight.output_dir) / "log.jsonl").read_text().splitlines()
    logs_b = (Path(killed.output_dir) / "log.jsonl").read_text().splitlines()
    assert len(logs_a) == len(logs_b) == 4
    import json
    strip = lambda line: {k: v for k, v in json.loads(line).items() if not k.startswith("seconds") and k != "image"}
    assert [strip(x) for x in logs_a] == [strip(x) for x in logs_b]


def test_one_definition_of_a_complete_checkpoint(tmp_path):
    from evolmm_lib.evaluation.report import newest_checkpoint

    def folder(name: str, files: list[str]) -> Path:
        for f in files:
            (tmp_path / "train" / name / f).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "train" / name / f).write_bytes(b"x")
        return tmp_path / "train" / name

    good = folder("checkpoint-3", [ckpt.STATE_FILE, "solver/adapter_model.safetensors", "proposer/adapter_model.safetensors"])
    full = folder("checkpoint-2", [ckpt.STATE_FILE, "solver/model.safetensors", "proposer/model.safetensors"])
    no_state = folder("checkpoint-9", ["solver/adapter_model.safetensors", "proposer/adapter_model.safetensors"])
    one_role = folder("checkpoint-8", [ckpt.STATE_FILE, "solver/adapter_model.safetensors", "proposer/adapter_config.json"])
    assert [ckpt.is_complete(p) for p in (good, full, no_state, one_role)] == [True, True, False, False]
    assert ckpt.checkpoints(tmp_path / "train") == [full, good]
    assert newest_checkpoint(tmp_path) == good == ckpt.latest_checkpoint(tmp_path / "train")
    assert ckpt.incomplete_checkpoints(tmp_path / "train") == [one_role, no_state]


def test_resume_names_the_incomplete_checkpoints_it_passes_over(tmp_path, tiny_backbone, caplog):
    cfg = small_config(tmp_path, total_steps=2, save_every=2)
    EvoLMMTrainer(tiny_backbone, cfg).train()
    partial = Path(cfg.output_dir) / "checkpoint-9"
    (partial / "solver").mkdir(parents=True)  # e.g. a copy that stopped half-way
    tr = EvoLMMTrainer(tiny_backbone, cfg)
    with caplog.at_level("WARNING", logger="evolmm"):
        assert tr.resume() and tr.global_step == 2
    assert any("checkpoint-9 is not a complete checkpoint" in r.getMessage() for r in caplog.records)


def test_full_update_checkpoint_restores_both_role_models(tmp_path):
    from evolmm_lib.backbone import load_backbone

    cfg = small_config(tmp_path, update="full", lr=1e-4, total_steps=2, num_solver_samples=2)
    trained = load_backbone(config=cfg)
    EvoLMMTrainer(trained, cfg).train()
    fresh = load_backbone(config=cfg)
    tr = EvoLMMTrainer(fresh, cfg)
    assert tr.resume() and tr.global_step == 2
    for role in ("solver", "proposer"):
        pairs = list(zip(trained.trainable_parameters(role), fresh.trainable_parameters(role)))
        assert pairs and all(torch.equal(a, b) for a, b in pairs)
