"""Where a train config value comes from when several sources give it: defaults < --config < --set < flags.

Fields used here (``weight_decay``, ``baseline_momentum``, ``kl_target``) are run settings no model choice
implies, so the order checked holds whatever other layers sit between the defaults and ``--config``.
"""

from __future__ import annotations

import argparse
import itertools

import pytest

from evolmm_lib import train_cli
from evolmm_lib.config import EvoLMMConfig

DEFAULT = EvoLMMConfig().weight_decay
CONFIG, SET, FLAG = 0.11, 0.22, 0.33


def parse(argv):
    p = argparse.ArgumentParser()
    train_cli.add_arguments(p)
    return train_cli.config_from_args(p.parse_args(argv))


@pytest.fixture
def yaml_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(f"weight_decay: {CONFIG}\nbaseline_momentum: 0.5\n")
    return str(path)


@pytest.mark.parametrize("sources", [s for n in range(4) for s in itertools.combinations(("config", "set", "flag"), n)])
def test_the_highest_source_given_wins(sources, yaml_file):
    """Every subset of the three sources for one field, in every order on the command line."""
    pieces = {"config": ["--config", yaml_file], "set": ["--set", f"weight_decay={SET}"],
              "flag": ["--weight-decay", str(FLAG)]}
    want = {(): DEFAULT}.get(sources) or {"config": CONFIG, "set": SET, "flag": FLAG}[sources[-1]]
    for order in itertools.permutations(sources):
        argv = [a for s in order for a in pieces[s]]
        assert parse(argv).weight_decay == want, argv


def test_all_three_at_once_for_two_fields(yaml_file):
    c = parse(["--baseline-momentum", "0.7", "--set", "baseline_momentum=0.6", "--config", yaml_file,
               "--set", f"weight_decay={SET}", "--weight-decay", str(FLAG)])
    assert (c.weight_decay, c.baseline_momentum) == (FLAG, 0.7)
    # a field that only the file sets keeps the file's value; one nobody sets keeps the default
    c = parse(["--config", yaml_file, "--set", f"weight_decay={SET}"])
    assert (c.weight_decay, c.baseline_momentum, c.kl_target) == (SET, 0.5, EvoLMMConfig().kl_target)


def test_later_set_of_the_same_field_wins(yaml_file):
    c = parse(["--config", yaml_file, "--set", "weight_decay=0.4", "--set", "weight_decay=0.5"])
    assert c.weight_decay == 0.5


def test_steps_is_a_flag_above_config_and_set(tmp_path):
    path = tmp_path / "steps.yaml"
    path.write_text("total_steps: 11\n")
    assert parse(["--config", str(path)]).total_steps == 11
    assert parse(["--config", str(path), "--set", "total_steps=12"]).total_steps == 12
    assert parse(["--config", str(path), "--set", "total_steps=12", "--steps", "13"]).total_steps == 13
    assert parse(["--steps", "13", "--total-steps", "14"]).total_steps == 14  # the field's own flag first


def test_the_winning_value_is_validated(yaml_file):
    from evolmm_lib.config import ConfigError

    assert parse(["--config", yaml_file, "--set", "baseline_momentum=0.95"]).baseline_momentum == 0.95
    with pytest.raises(ConfigError, match="^baseline_momentum="):
        parse(["--config", yaml_file, "--baseline-momentum", "1.5"])


def test_print_config_shows_the_winning_value_and_its_source(yaml_file, capsys):
    """The same order through the command line's own report (``train --print-config`` loads nothing)."""
    from evolmm_lib.__main__ import main

    def printed(*argv):
        assert main(["train", "--print-config", *argv]) == 0
        return next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("weight_decay:"))

    assert printed() == f"weight_decay: {DEFAULT}  # from: default"
    assert printed("--config", yaml_file) == f"weight_decay: {CONFIG}  # from: --config {yaml_file}"
    assert printed("--config", yaml_file, "--set", f"weight_decay={SET}") == f"weight_decay: {SET}  # from: --set"
    assert printed("--weight-decay", str(FLAG), "--config", yaml_file, "--set", f"weight_decay={SET}") == (
        f"weight_decay: {FLAG}  # from: flag")
