"""Notebook 04 runs end to end with papermill on its CPU default (the miniature world) and writes its run_dir."""

from __future__ import annotations

import json

import nbformat
import pytest

from evolmm_lib.evaluation.report import newest_checkpoint


@pytest.mark.slow
def test_notebook_04_executes(tmp_path):
    from evolmm_lib.notebook_chain import run_chain

    run_chain(tmp_path / "run", only=["04"], parameters={"steps": 6, "num_solver_samples": 3, "max_new_tokens": 12})
    out = tmp_path / "run" / "train"
    executed = nbformat.read(tmp_path / "run" / "04_rl_training.ipynb", 4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # curves and entropy, inline
    assert (out / "curves.png").stat().st_size > 0 and (out / "entropy_early_late.png").stat().st_size > 0
    logs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == list(range(1, 9))  # 6 steps, then resumed for 2 more
    assert all("/world/pool/pool_" in r["image"] for r in logs)  # the miniature world's unlabelled pool
    report = json.loads((out / "report.json").read_text())
    assert report["world_question_rate"] >= 0.8 and set(report["early_late"]["early"]) >= {"beta_solver", "kl_solver"}
    assert json.loads((out / "summary.json").read_text())["steps"] == 8
    assert (out / "checkpoint-8" / "solver" / "adapter_config.json").is_file()
    assert newest_checkpoint(tmp_path / "run") == out / "checkpoint-8"  # where notebook 05 looks


@pytest.mark.slow
def test_notebook_04_official_recipe(tmp_path):
    """The parameters cell's `recipe` reaches the trainer: official keeps the Proposer adapter as loaded."""
    import torch
    from safetensors.torch import load_file

    from evolmm_lib.notebook_chain import run_chain

    run_chain(tmp_path / "run", only=["04"], parameters={"model": "tiny", "recipe": "official", "steps": 5,
                                                         "num_solver_samples": 2, "max_new_tokens": 6,
                                                         "proposer_update_freq": 1})
    out = tmp_path / "run" / "train"
    assert "recipe: official" in (out / "config.yaml").read_text()
    logs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert len(logs) >= 5
    proposer = load_file(next((out / "checkpoint-6" / "proposer").glob("*.safetensors")))
    assert all(torch.count_nonzero(t) == 0 for k, t in proposer.items() if "lora_B" in k)  # never trained
