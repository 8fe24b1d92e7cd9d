"""Hyperparameters that travel with the model: each model's training and evaluation settings.

A hub model, a local folder, ``random:*`` and the random-weight ``tiny`` train with the paper's /
official values (the :class:`~evolmm_lib.config.EvoLMMConfig` defaults: lr 1e-6, β0 1e-3, β ≤ 100,
128 new tokens; ``tiny`` is the paper run in small shapes, as the official-parity tests run it). The
2.2M-parameter ``miniature`` keeps the values validated for it: a 1000× larger step to move in 200
steps, β0 0.05 under a ceiling of 1, answers within 16 tokens (notebooks 04 and 06, papers/evolmm.md).
Both CPU models evaluate a handful of items with short answers; every other model the whole set with
each task's own budget.

Where a value comes from, lowest first: ``default`` < ``model preset`` < ``--config`` < ``--set`` <
flag (or a notebook parameter). :func:`resolve_config` applies the layers and says, per field, which
layer set it; ``python -m evolmm_lib train --model M --print-config`` prints that, and every run folder's
``config.yaml`` records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import EvoLMMConfig, field_defaults

PAPER_FIELDS = ("lr", "kl_coef", "kl_max", "max_new_tokens_solver", "max_new_tokens_proposer")
"""The fields whose paper/official value a hub-sized model must not lose to a small model's preset."""

SMALL_CPU_MODEL = {"cpu_threads": 1}
"""What the two small CPU models (tiny, miniature) run on: one CPU thread, since small matmuls gain little from a
second thread and lose several times when the cores are shared (papers/results/threads_cpu.txt)."""

MINIATURE_TRAINING = {"lr": 1e-3, "kl_coef": 0.05, "kl_max": 1.0, "max_new_tokens_solver": 16,
                      "max_new_tokens_proposer": 16, "total_steps": 200, **SMALL_CPU_MODEL}
"""The miniature's validated run (notebook 04: LoRA lr 1e-3, β0 0.05, β ≤ 1, 16 tokens, 200 steps), one CPU thread."""

SMALL_MODEL_EVALUATION = {"limit": 6, "max_new_tokens": 16, "world_test_items": 100}
"""Notebook 05 on a CPU model: a handful of items per benchmark, short answers (a pipeline check), and the
miniature world's labelled test split."""

FULL_EVALUATION = {"limit": None, "max_new_tokens": None, "world_test_items": 0}
"""Every item, each task's own token budget (lmms-eval's); no miniature-world section."""


@dataclass(frozen=True)
class ModelPreset:
    """What a model brings: its training config values and its evaluation settings (notebook 05, ``evaluate``)."""

    name: str
    training: dict[str, Any]
    evaluation: dict[str, Any] = field(default_factory=lambda: dict(FULL_EVALUATION))


def model_preset(model: str) -> ModelPreset:
    """The preset of ``model``: the miniature's own values; the paper's for every other model."""
    defaults = field_defaults()
    paper = {k: defaults[k] for k in PAPER_FIELDS}
    if model == "miniature":
        return ModelPreset("miniature", dict(MINIATURE_TRAINING), dict(SMALL_MODEL_EVALUATION))
    if model == "tiny":
        return ModelPreset("tiny: the paper's values", {**paper, **SMALL_CPU_MODEL}, dict(SMALL_MODEL_EVALUATION))
    return ModelPreset("the paper's values", paper)


@dataclass(frozen=True)
class ResolvedConfig:
    """A config and, per field, the layer that set it (``default``, ``model preset (…)``, ``--config FILE``, …)."""

    config: EvoLMMConfig
    sources: dict[str, str]

    def to_yaml(self) -> str:
        """The config as YAML, each value followed by ``# from: <source>`` (loads back with ``--config``)."""
        return self.config.to_yaml(self.sources)

    def describe(self) -> str:
        """One line per field not left at its default: ``name = value  (source)``."""
        values = self.config.to_dict()
        return "\n".join(f"{k} = {values[k]!r}  ({src})" for k, src in self.sources.items() if src != "default")


def resolve_config(*layers: tuple[str, dict[str, Any]], model: str | None = None) -> ResolvedConfig:
    """Apply ``layers`` — ``(label, {field: value})``, lowest precedence first — over the defaults, with the
    model's preset inserted right above the defaults. The model is the one the highest layer names (or
    ``model``, or the default)."""
    named = [v["model"] for _, v in layers if v.get("model") is not None]
    model = named[-1] if named else (model or field_defaults()["model"])
    preset = model_preset(model)
    values: dict[str, Any] = {}
    sources = {name: "default" for name in field_defaults()}
    for label, layer in ((f"model preset ({preset.name})", preset.training), *layers):
        for key, value in layer.items():
            values[key] = value
            sources[key] = label
    if "model" not in values:  # named by the argument or the default, not by a layer
        values["model"] = model
        sources["model"] = "argument"
    return ResolvedConfig(EvoLMMConfig.from_dict(values), {k: sources[k] for k in field_defaults()})


def notebook_config(model: str, **parameters: Any) -> EvoLMMConfig:
    """A notebook's config: its parameters (``None`` = the model's preset) over the preset; prints what is set."""
    resolved = resolve_config(("notebook parameter", {"model": model, **{k: v for k, v in parameters.items()
                                                                         if v is not None}}))
    print(f"effective settings ({model}; every other field at its default):\n{resolved.describe()}")
    return resolved.config


def notebook_evaluation(model: str, **parameters: Any) -> dict[str, Any]:
    """Notebook 05's evaluation settings: its parameters (``None`` = the model's preset) over the preset; printed."""
    preset = model_preset(model)
    settings = {**preset.evaluation, **{k: v for k, v in parameters.items() if v is not None}}
    print(f"evaluation settings ({model}):", ", ".join(
        f"{k}={v!r} ({'notebook parameter' if parameters.get(k) is not None else f'model preset ({preset.name})'})"
        for k, v in settings.items()))
    return settings


def infer_sources(config: EvoLMMConfig) -> dict[str, str]:
    """Per field, the lowest layer that explains its value — for a config built in Python, whose layers are not
    known: ``default``, ``model preset (…)`` or ``set by the caller``."""
    defaults, preset = field_defaults(), model_preset(config.model)
    values = config.to_dict()
    out = {}
    for key, value in values.items():
        default = list(defaults[key]) if isinstance(defaults[key], tuple) else defaults[key]
        if key in preset.training and value == preset.training[key]:
            out[key] = f"model preset ({preset.name})" if value != default else "default"
        else:
            out[key] = "default" if value == default else "set by the caller"
    return out
