"""The sampling settings of the config reach every role's ``generate`` call (seen on the real tiny model).

Values away from the defaults (T = 1.0, top-p = 1.0) make a setting that is dropped on the way visible.
"""

from __future__ import annotations

import pytest

from conftest import make_images
from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.rollout import effective_generation_settings
from evolmm_lib.trainer import EvoLMMTrainer

T, TOP_P = 0.7, 0.85


def spy_generate(monkeypatch, backbone) -> list[tuple[str, dict]]:
    """(active adapter, keywords) of every ``model.generate`` call."""
    calls = []
    real = backbone.model.generate

    def spying(*args, **kwargs):
        calls.append((backbone.model.active_adapter, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(backbone.model, "generate", spying)
    return calls


def config(tmp_path, **kw) -> EvoLMMConfig:
    make_images(tmp_path / "images", 2)
    return EvoLMMConfig(**{**dict(data_dir=str(tmp_path / "images"), output_dir=str(tmp_path / "run"),
                                  num_solver_samples=2, max_new_tokens_proposer=5, max_new_tokens_solver=3,
                                  proposer_update_freq=1, save_every=0, temperature=T, top_p=TOP_P), **kw})


def test_paper_recipe_every_role_samples_with_the_configured_settings(tmp_path, tiny_backbone, monkeypatch):
    cfg = config(tmp_path)
    calls = spy_generate(monkeypatch, tiny_backbone)
    trainer = EvoLMMTrainer(tiny_backbone, cfg)
    trainer.step()
    assert [role for role, _ in calls] == ["proposer", "solver"]
    budgets = {"proposer": cfg.max_new_tokens_proposer, "solver": cfg.max_new_tokens_solver}
    for role, kw in calls:
        assert kw["do_sample"] is True
        assert (kw["temperature"], kw["top_p"]) == (T, TOP_P), role
        assert kw["top_k"] is None and kw["min_p"] is None and kw["repetition_penalty"] == 1.0, role
        assert kw["max_new_tokens"] == budgets[role]
        assert kw["suppress_tokens"]  # the vision placeholders
    settings = trainer.generation_settings  # what the run logs it samples with
    assert (settings["temperature"], settings["top_p"], settings["top_k"]) == (T, TOP_P, None)
    assert settings == effective_generation_settings(tiny_backbone, cfg)


def test_official_recipe_passes_t_and_top_p_and_leaves_the_rest_to_the_checkpoint(tmp_path, tiny_backbone,
                                                                                  monkeypatch):
    cfg = config(tmp_path, recipe="official")
    calls = spy_generate(monkeypatch, tiny_backbone)
    trainer = EvoLMMTrainer(tiny_backbone, cfg)
    trainer.step()
    # sequential (official): one Proposer call, then one Solver call per sample
    assert [role for role, _ in calls] == ["proposer"] + ["solver"] * cfg.num_solver_samples
    for role, kw in calls:
        assert (kw["do_sample"], kw["temperature"], kw["top_p"]) == (True, T, TOP_P), role
        assert not {"top_k", "min_p", "repetition_penalty", "suppress_tokens", "eos_token_id"} & set(kw), role
    settings = trainer.generation_settings
    merged, _ = tiny_backbone.model._prepare_generation_config(None)  # the checkpoint's own, as generate merges it
    assert (settings["temperature"], settings["top_p"]) == (T, TOP_P)
    assert settings["top_k"] == merged.top_k and not settings["suppress_vision_tokens"]


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (1.3, 0.5)])
def test_reported_settings_follow_the_config(tiny_backbone, temperature, top_p):
    cfg = EvoLMMConfig(temperature=temperature, top_p=top_p)
    settings = effective_generation_settings(tiny_backbone, cfg)
    assert (settings["temperature"], settings["top_p"], settings["do_sample"]) == (temperature, top_p, True)
    assert settings["suppress_vision_tokens"] is True
