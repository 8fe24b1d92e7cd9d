"""Notebook 04 runs end to end with papermill on the tiny model and writes its artefacts into run_dir."""

from __future__ import annotations

import json

import pytest

from conftest import make_images

from evolmm_lib.evaluation.report import newest_checkpoint


@pytest.mark.slow
def test_notebook_04_executes(tmp_path):
    from evolmm_lib.notebook_chain import run_chain

    images = tmp_path / "images"
    make_images(images, 4)
    run_chain(tmp_path / "run", only=["04"],
              parameters={"steps": 6, "num_solver_samples": 3, "max_new_tokens": 8, "data_dir": str(images)})
    out = tmp_path / "run" / "train"
    assert (tmp_path / "run" / "04_rl_training.ipynb").is_file()
    assert (out / "curves.png").stat().st_size > 0 and (out / "entropy_early_late.png").stat().st_size > 0
    logs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == list(range(1, 9))  # 6 steps, then resumed for 2 more
    assert json.loads((out / "summary.json").read_text())["steps"] == 8
    assert (out / "checkpoint-8" / "solver" / "adapter_config.json").is_file()
    assert newest_checkpoint(tmp_path / "run") == out / "checkpoint-8"  # where notebook 05 looks
