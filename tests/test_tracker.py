"""report_to="tensorboard" really writes: two trainer steps, read back with tensorboard's own reader."""

from __future__ import annotations

import json

import pytest

from conftest import make_images
from evolmm_lib.backbone import load_backbone
from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.trainer import EvoLMMTrainer


@pytest.mark.slow
def test_tensorboard_tracker_holds_the_logged_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # make test installs it

    make_images(tmp_path / "images", 2)
    cfg = EvoLMMConfig(data_dir=str(tmp_path / "images"), output_dir=str(tmp_path / "run"), num_solver_samples=2,
                       max_new_tokens_solver=6, max_new_tokens_proposer=6, proposer_update_freq=1, save_every=0,
                       total_steps=2, report_to="tensorboard")
    EvoLMMTrainer(load_backbone("tiny", config=cfg), cfg).train()  # own copy: training changes the backbone
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"entropy", "proposer_reward", "beta_solver", "loss_solver", "kl_solver"} <= tags
    for key in ("entropy", "proposer_reward", "beta_solver", "baseline_solver"):
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        assert logged == [(r["step"], pytest.approx(r[key], rel=1e-6, abs=1e-7)) for r in records], key
