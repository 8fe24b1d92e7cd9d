"""A run whose reward carries no signal is named within its first window (evolmm_lib.signals, the trainer)."""

from __future__ import annotations

import json
import logging

import official_parity as op
from conftest import make_images
from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.signals import SignalCheck


def record(completions=("a", "b"), beta=1e-3, kl=1e-3):
    return {"solver_completions": list(completions), "beta_solver": beta, "kl_solver": kl}


def test_each_cause_is_named_once_at_the_window_boundary():
    check = SignalCheck(window=4, kl_min=1e-8)
    stuck = record(completions=("same", "same", "same"), beta=1e-8, kl=0.0)
    assert [check.observe(s, [stuck]) for s in (1, 2, 3)] == [[], [], []]  # not before the window is full
    found = check.observe(4, [stuck])
    assert [f.split(":")[0] for f in found] == ["identical_samples", "beta_at_floor", "kl_zero"]
    assert all("\n" not in f for f in found)
    assert check.observe(8, [stuck] * 4) == []  # each cause once per run


def test_a_run_with_spread_answers_and_a_moving_kl_raises_nothing():
    check = SignalCheck(window=3, kl_min=1e-8)
    mixed = [record(), record(completions=("x", "x")), record(kl=0.0)]  # one identical group, one zero KL
    assert [check.observe(s, [r]) for s, r in enumerate(mixed, 1)] == [[], [], []]


def test_identical_samples_need_nearly_every_group():
    check = SignalCheck(window=10, kl_min=1e-8)
    found = []
    for s in range(1, 11):
        found += check.observe(s, [record(completions=("x", "x") if s <= 8 else ("x", "y"))])
    assert found == []  # 8 of 10 identical: below the 90% mark
    check = SignalCheck(window=10, kl_min=1e-8)
    for s in range(1, 11):
        found += check.observe(s, [record(completions=("x", "x") if s <= 9 else ("x", "y"))])
    assert [f.split(":")[0] for f in found] == ["identical_samples"]


def test_official_recipe_on_a_top_k_1_checkpoint_is_caught_in_the_log(tmp_path, caplog):
    """An Instruct-style generation_config (top_k 1) under recipe=official: all N samples identical; the trainer
    says so in one warning line at the end of the first window and in that step's log record."""
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.trainer import train

    models = op.build_models(tmp_path / "models")
    make_images(tmp_path / "img", 3)
    cfg = EvoLMMConfig(model=str(models["instruct"]), recipe="official", total_steps=3, signal_window=3,
                       num_solver_samples=3, max_new_tokens_solver=6, max_new_tokens_proposer=6, save_every=0,
                       data_dir=str(tmp_path / "img"), output_dir=str(tmp_path / "run"))
    with caplog.at_level(logging.WARNING, logger="evolmm"):
        train(cfg, backbone=load_backbone(config=cfg))
    logs = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert "no_signal" not in logs[0] and "no_signal" not in logs[1]
    assert logs[2]["no_signal"][0].startswith("identical_samples: ")
    warned = [r.getMessage() for r in caplog.records if "carries no signal" in r.getMessage()]
    assert len(warned) >= 1 and warned[0].startswith("step 3: ") and "top_k=1" in warned[0]
