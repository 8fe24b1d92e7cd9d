"""Hyperparameters travel with the model (evolmm_lib.presets): each layer's precedence and each value's source."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, make_images
from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.presets import MINIATURE_TRAINING, model_preset, resolve_config

PAPER = {"lr": 1e-6, "kl_coef": 1e-3, "kl_max": 100.0, "max_new_tokens_solver": 128, "max_new_tokens_proposer": 128}


def print_config(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evolmm_lib", "train", *args, "--print-config"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def parsed(stdout: str) -> tuple[dict, dict]:
    """(values, sources) of a --print-config listing."""
    values = yaml.safe_load(stdout)
    sources = {line.split(":", 1)[0]: line.rsplit("# from: ", 1)[1] for line in stdout.splitlines()}
    return values, sources


@pytest.mark.parametrize("model", ["qwen2.5-vl-7b", "Qwen/Qwen2.5-VL-3B-Instruct", "random:qwen2.5-vl-72b", "tiny"])
def test_hub_local_random_and_tiny_models_train_with_the_paper_values(model):
    r = resolve_config(("flag", {"model": model}))
    assert {k: getattr(r.config, k) for k in PAPER} == PAPER
    assert all(r.sources[k].startswith("model preset") for k in PAPER)


def test_the_miniature_keeps_its_validated_values():
    r = resolve_config(("flag", {"model": "miniature"}))
    assert {k: getattr(r.config, k) for k in MINIATURE_TRAINING} == MINIATURE_TRAINING
    assert r.sources["lr"] == "model preset (miniature)" and r.sources["weight_decay"] == "default"
    assert model_preset("miniature").evaluation == {"limit": 6, "max_new_tokens": 16, "world_test_items": 100}
    assert model_preset("qwen2.5-vl-7b").evaluation == {"limit": None, "max_new_tokens": None, "world_test_items": 0}


def test_print_config_for_the_7b_shows_the_paper_values_and_loads_nothing():
    proc = print_config("--model", "qwen2.5-vl-7b")  # offline, not cached: printing must not need the weights
    assert proc.returncode == 0, proc.stderr
    values, sources = parsed(proc.stdout)
    assert {k: values[k] for k in PAPER} == PAPER
    assert sources["model"] == "flag" and sources["lr"] == "model preset (the paper's values)"
    assert sources["seed"] == "default"
    assert EvoLMMConfig.from_dict(values).model == "qwen2.5-vl-7b"  # the listing loads back as a config


def test_print_config_for_the_miniature_shows_its_own():
    values, sources = parsed(print_config("--model", "miniature").stdout)
    assert values["lr"] == 1e-3 and values["max_new_tokens_solver"] == 16 and values["total_steps"] == 200
    assert sources["lr"] == "model preset (miniature)"


def test_every_layer_at_once_each_field_from_its_highest_layer(tmp_path):
    """defaults < model preset < --config < --set < flag, all five on the same and on different fields."""
    conf = tmp_path / "c.yaml"
    conf.write_text("lr: 2.0e-5\nkl_coef: 0.5\nweight_decay: 0.2\nbaseline_momentum: 0.5\n")
    proc = print_config("--model", "miniature", "--config", str(conf), "--set", "lr=3e-5", "--set",
                        "weight_decay=0.3", "--lr", "4e-5")
    assert proc.returncode == 0, proc.stderr
    values, sources = parsed(proc.stdout)
    assert (values["lr"], sources["lr"]) == (4e-5, "flag")
    assert (values["weight_decay"], sources["weight_decay"]) == (0.3, "--set")
    assert (values["kl_coef"], sources["kl_coef"]) == (0.5, f"--config {conf}")
    assert (values["baseline_momentum"], sources["baseline_momentum"]) == (0.5, f"--config {conf}")
    assert (values["kl_max"], sources["kl_max"]) == (1.0, "model preset (miniature)")
    assert (values["seed"], sources["seed"]) == (42, "default")


def test_the_model_named_in_a_config_file_picks_the_preset(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("model: miniature\n")
    values, sources = parsed(print_config("--config", str(conf)).stdout)
    assert values["lr"] == 1e-3 and sources["model"] == f"--config {conf}"
    values, _ = parsed(print_config("--config", str(conf), "--model", "qwen2.5-vl-7b").stdout)
    assert values["lr"] == 1e-6  # the flag's model wins, and with it its preset


def test_a_bad_value_is_one_error_line():
    proc = print_config("--model", "miniature", "--set", "lr=fast")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == ["error: lr='fast': expected a number"]


def test_the_run_folder_config_records_each_value_and_its_source(tmp_path):
    """train() writes config.yaml with the sources it was given (the CLI's), or inferred ones from Python."""
    from evolmm_lib.trainer import train

    make_images(tmp_path / "img", 2)
    r = resolve_config(("flag", {"model": "tiny", "output_dir": str(tmp_path / "run"), "total_steps": 1,
                                 "max_new_tokens_solver": 4, "max_new_tokens_proposer": 4, "num_solver_samples": 2,
                                 "data_dir": str(tmp_path / "img"), "save_every": 0}))
    train(r.config, sources=r.sources)
    text = (tmp_path / "run" / "config.yaml").read_text()
    assert "lr: 1.0e-06  # from: model preset (tiny: the paper's values)" in text
    assert "total_steps: 1  # from: flag" in text
    assert EvoLMMConfig.from_yaml(tmp_path / "run" / "config.yaml") == r.config
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1

    cfg = EvoLMMConfig(model="tiny", output_dir=str(tmp_path / "py"), total_steps=1, max_new_tokens_solver=4,
                       max_new_tokens_proposer=4, num_solver_samples=2, data_dir=str(tmp_path / "img"),
                       save_every=0, weight_decay=0.5)
    train(cfg)
    text = (tmp_path / "py" / "config.yaml").read_text()
    assert "weight_decay: 0.5  # from: set by the caller" in text and "seed: 42  # from: default" in text


def notebook_parameters() -> dict[str, set[str]]:
    import papermill as pm

    return {p.name: set(pm.inspect_notebook(str(p))) for p in sorted((REPO / "notebooks").glob("0[1-5]_*.ipynb"))}


def test_the_readme_gpu_command_sets_parameters_that_mean_one_thing_and_trains_with_the_paper_values():
    """Each `-p` of the README's GPU chain command names a parameter of some notebook; no notebook keeps the
    ambiguous `data_dir`; training images and benchmark data have their own names; the model's preset is the paper's."""
    from evolmm_lib.notebook_chain import parse_params

    line = next(ln for ln in (REPO / "README.md").read_text().splitlines()
                if ln.startswith("python -m evolmm_lib notebooks --output-dir runs/gpu"))
    words = line.split("#")[0].split()
    params = parse_params([words[i + 1] for i, w in enumerate(words) if w == "-p"])
    books = notebook_parameters()
    known = set().union(*books.values())
    assert set(params) <= known, set(params) - known
    assert not any("data_dir" in names for names in books.values())
    assert {b for b, names in books.items() if "image_dir" in names} == {
        "02_proposer.ipynb", "03_solver_consistency.ipynb", "04_rl_training.ipynb"}
    assert {b for b, names in books.items() if "benchmark_dir" in names} == {"05_evaluation.ipynb"}
    config = resolve_config(("notebook parameter", {"model": params["model"]})).config
    assert {k: getattr(config, k) for k in PAPER} == PAPER
    assert model_preset(params["model"]).evaluation["limit"] is None  # notebook 05: every item
