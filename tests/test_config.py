"""Config: paper/official defaults, YAML round trip, one clear error naming the bad field."""

import pytest

from evolmm_lib.config import ConfigError, EvoLMMConfig, config_fields


def test_defaults_match_paper_and_official_code():
    c = EvoLMMConfig()
    assert (c.num_solver_samples, c.solver_soft_gamma, c.len_penalty_weight, c.len_penalty_target_words) == (5, 0.7, 0.1, 6)
    assert (c.prop_entropy_mu, c.prop_entropy_sigma, c.temperature, c.top_p) == (0.9, 0.35, 1.0, 1.0)
    assert (c.max_new_tokens_solver, c.max_new_tokens_proposer, c.proposer_update_freq) == (128, 128, 5)
    assert (c.lr, c.weight_decay, c.grad_clip) == (1e-6, 0.01, 1.0)
    assert (c.kl_coef, c.kl_target, c.kl_adapt_rate, c.baseline_momentum) == (1e-3, 0.02, 0.10, 0.9)
    assert (c.lora_r, c.lora_alpha, c.lora_dropout) == (16, 32, 0.05)
    assert c.lora_target_modules == ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert c.freeze_vision and c.seed == 42 and c.model == "tiny"


def test_every_field_is_documented():
    rows = config_fields()
    assert len(rows) == len(EvoLMMConfig().to_dict())
    undocumented = [r["field"] for r in rows if not r["meaning"]]
    assert not undocumented


def test_yaml_round_trip(tmp_path):
    c = EvoLMMConfig(model="qwen2.5-vl-7b", lr=3e-5, reward="discrete", lora_target_modules=("q_proj", "v_proj"))
    path = c.save_yaml(tmp_path / "cfg.yaml")
    assert EvoLMMConfig.from_yaml(path) == c


def test_yaml_scientific_notation_string_is_accepted(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: 1e-5\nkl_coef: 2e-3\nnum_solver_samples: 8\n")
    c = EvoLMMConfig.from_yaml(tmp_path / "c.yaml")
    assert c.lr == 1e-5 and c.kl_coef == 2e-3 and c.num_solver_samples == 8


@pytest.mark.parametrize("kwargs, field", [
    ({"num_solver_samples": 0}, "num_solver_samples"),
    ({"num_solver_samples": 2.5}, "num_solver_samples"),
    ({"solver_soft_gamma": -1.0}, "solver_soft_gamma"),
    ({"top_p": 1.5}, "top_p"),
    ({"lr": "fast"}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"reward": "binary"}, "reward"),
    ({"backend": "vllm"}, "backend"),
    ({"baseline_momentum": 1.2}, "baseline_momentum"),
    ({"kl_min": 1.0, "kl_max": 0.5}, "kl_min"),
    ({"model": ""}, "model"),
])
def test_bad_value_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"^{field}"):
        EvoLMMConfig(**kwargs)


def test_unknown_field_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="^gama: unknown config field"):
        EvoLMMConfig.from_dict({"gama": 0.7})
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        EvoLMMConfig.from_yaml(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="not found"):
        EvoLMMConfig.from_yaml(tmp_path / "missing.yaml")


def test_cli_style_overrides():
    c = EvoLMMConfig().with_overrides(["lr=1e-4", "reward=discrete", "num_solver_samples=8"])
    assert (c.lr, c.reward, c.num_solver_samples) == (1e-4, "discrete", 8)
    with pytest.raises(ConfigError, match="expected field=value"):
        EvoLMMConfig().with_overrides(["lr"])


def test_qlora_implies_4bit_without_changing_the_field():
    c = EvoLMMConfig(update="qlora")
    assert c.load_4bit and c.load_in_4bit is False  # what the setting implies is read, not written back
    assert EvoLMMConfig(load_in_4bit=True).load_4bit and not EvoLMMConfig().load_4bit


@pytest.mark.parametrize("overrides", [
    {}, {"update": "qlora"}, {"recipe": "official"}, {"lora_target_modules": ("q_proj",)}, {"lr": 2e-5},
])
def test_validate_never_changes_a_value(overrides):
    c = EvoLMMConfig(**overrides)
    before = c.to_dict()
    c.validate()
    assert c.to_dict() == before and c.update_mode == "auto"


def test_every_field_has_help_and_source_metadata_and_choices_are_literal_types():
    import dataclasses
    from typing import Literal, get_origin, get_type_hints

    from evolmm_lib.config import RECIPES, choices_of

    for f in dataclasses.fields(EvoLMMConfig):
        assert f.metadata["help"].strip() and f.metadata["source"].split()[0] in ("paper", "official", "kit"), f.name
    hints = get_type_hints(EvoLMMConfig)
    assert set(choices_of()) == {n for n, t in hints.items() if get_origin(t) is Literal} >= {"recipe", "update", "reward"}
    assert choices_of()["update"] == ("lora", "qlora", "full") and RECIPES == ("paper", "official")
    with pytest.raises(ConfigError, match="^advantage='grpo': expected one of ema, group$"):
        EvoLMMConfig(advantage="grpo")


def test_generated_flags_set_fields_with_the_right_precedence(tmp_path):
    import argparse

    from evolmm_lib import train_cli

    p = argparse.ArgumentParser()
    train_cli.add_arguments(p)
    (tmp_path / "c.yaml").write_text("lr: 1e-3\nreward: discrete\nseed: 3\n")
    args = p.parse_args(["--config", str(tmp_path / "c.yaml"), "--set", "seed=4", "--lr", "2e-5", "--freeze-vision",
                         "false", "--lora-target-modules", "[q_proj, v_proj]", "--steps", "7", "--recipe", "official"])
    c = train_cli.config_from_args(args)
    assert (c.lr, c.reward, c.seed, c.freeze_vision, c.total_steps, c.recipe) == (2e-5, "discrete", 4, False, 7, "official")
    assert c.lora_target_modules == ("q_proj", "v_proj")
    assert train_cli.config_from_args(p.parse_args([])) == EvoLMMConfig(cpu_threads=1)  # the default model tiny: 1 thread
    help_text = p.format_help()
    for f in ("--solver-soft-gamma", "--kl-target", "paper Eq. 3 / official `solver_soft_gamma`"):
        assert f in " ".join(help_text.split())
    with pytest.raises(SystemExit):
        p.parse_args(["--update", "half"])


@pytest.mark.parametrize("pair,field", [
    ("freeze_vision=abc", "freeze_vision"),
    ("load_in_4bit=maybe", "load_in_4bit"),
    ("output_dir=[a, b]", "output_dir"),
    ("data_dir=[a]", "data_dir"),
    ("lora_target_modules=", "lora_target_modules"),
    ("lora_target_modules=[]", "lora_target_modules"),
    ("lora_target_modules=[1, 2]", "lora_target_modules"),
    ("recipe=authors", "recipe"),
])
def test_cli_override_holes_are_one_error_naming_the_field(pair, field):
    """`--set FIELD=VALUE` values that used to be accepted (or crash with a TypeError) fail with one ConfigError."""
    with pytest.raises(ConfigError, match=rf"^{field}=") as e:
        EvoLMMConfig().with_overrides([pair])
    assert "\n" not in str(e.value)


def test_cli_main_prints_one_line_for_a_bad_override(tmp_path, capsys):
    from evolmm_lib.__main__ import main

    assert main(["train", "--output-dir", str(tmp_path), "--set", "lora_target_modules="]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: lora_target_modules=")


def test_lora_targets_as_comma_string_and_recipe_constraints():
    assert EvoLMMConfig().with_overrides(["lora_target_modules=q_proj, v_proj"]).lora_target_modules == ("q_proj", "v_proj")
    assert EvoLMMConfig(recipe="official").update_loop == "sequential" and EvoLMMConfig().update_loop == "batched"
    with pytest.raises(ConfigError, match="^update_mode='batched' with recipe='official'"):
        EvoLMMConfig(recipe="official", update_mode="batched")
    with pytest.raises(ConfigError, match="^recipe='official' with update='full'"):
        EvoLMMConfig(recipe="official", update="full")
    with pytest.raises(ConfigError, match="^recipe='official' with backend='unsloth'"):
        EvoLMMConfig(recipe="official", backend="unsloth")
    assert EvoLMMConfig().recipe == "paper"
