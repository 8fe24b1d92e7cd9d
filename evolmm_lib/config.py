"""One dataclass holding every EvoLMM hyperparameter, with its help and source as field metadata.

Sources: "paper" = arXiv 2511.16672; "official" = the authors' ``src/train.py`` / ``train.sh``;
"kit" = a choice of this kit (no counterpart upstream). ``papers/evolmm.md`` has the full table.
Choice fields are ``Literal`` types (their values are the choices); :func:`add_config_flags` makes one
command-line flag per field from the same metadata. Validation never changes a value: what a setting
implies (update="qlora" → 4-bit base weights, recipe="official" → one step per completion) is read
through :attr:`EvoLMMConfig.load_4bit` and :attr:`EvoLMMConfig.update_loop`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import UserError
from .recipes import recipe_of


class ConfigError(UserError, ValueError):
    """A configuration value is invalid; the message names the field."""


ROLES = ("solver", "proposer")
"""The two roles of the one backbone, each with its LoRA adapter (or model copy), optimiser, baseline b and β."""

LANGUAGE_MODEL_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")



@dataclass
class EvoLMMConfig:
    """EvoLMM hyperparameters. Defaults are the paper's / official code's unless marked "kit"."""

    # --- recipe ---------------------------------------------------------------------------
    recipe: Literal["paper", "official"] = field(default="paper", metadata={
        "help": ("paper: the method as the paper describes it; official: what the official ``src/train.py`` runs. "
                 "What differs is the fields of evolmm_lib/recipes.py (PAPER, OFFICIAL); the evidence is in "
                 "papers/evolmm.md \"What the official code runs\"."),
        "source": "kit"})

    # --- backbone -------------------------------------------------------------------------
    model: str = field(default="tiny", metadata={
        "help": "Preset name (tiny, qwen2.5-vl-3b/7b/72b), hub id or local path.",
        "source": "kit (paper: Qwen2.5-VL-7B)", "expected": "a preset name, hub id or path"})
    backend: Literal["auto", "transformers", "unsloth"] = field(default="auto", metadata={
        "help": "auto: Unsloth on a CUDA GPU when installed, else transformers + peft.",
        "source": "kit"})
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = field(default="auto", metadata={
        "help": "auto: bfloat16 on a bf16 GPU, else float32.",
        "source": "official `_safe_dtype`"})
    load_in_4bit: bool = field(default=False, metadata={
        "help": "4-bit base weights (QLoRA, bitsandbytes nf4 on a GPU or a CPU); update='qlora' loads them 4-bit too.",
        "source": "paper §4.4 ablation"})
    cpu_threads: int = field(default=0, metadata={
        "help": "torch threads when the model runs on a CPU; 0 leaves torch's default (one per core), and an "
                "OMP_NUM_THREADS set in the environment wins. The tiny and miniature presets set 1: on 2 cores a "
                "second thread gained 12-21% on a quiet machine and cost 1.8-3.1x when the cores were shared "
                "(papers/results/threads_cpu.txt).",
        "source": "kit", "min": 0})
    max_image_pixels: int | None = field(default=None, metadata={
        "help": "Cap on image pixels for the processor; None keeps the checkpoint's own.",
        "source": "kit", "min": 784})

    # --- rollout --------------------------------------------------------------------------
    num_solver_samples: int = field(default=5, metadata={
        "help": "N: Solver samples per question.",
        "source": "paper §3.2 / official `num_solver_samples`", "min": 1})
    temperature: float = field(default=1.0, metadata={
        "help": "Sampling temperature of both roles.",
        "source": "official `temp`", "range": (0.0, math.inf, False)})
    top_p: float = field(default=1.0, metadata={
        "help": "Nucleus sampling threshold of both roles.",
        "source": "official `top_p`", "range": (0.0, 1.0, True)})
    max_new_tokens_solver: int = field(default=128, metadata={
        "help": "Solver generation budget.",
        "source": "official `max_new_tokens_solver`", "min": 1})
    max_new_tokens_proposer: int = field(default=128, metadata={
        "help": "Proposer generation budget.",
        "source": "official `max_new_tokens_proposer`", "min": 1})
    images_per_step: int = field(default=1, metadata={
        "help": ("B: images per step; B questions in one Proposer generate, B×N answers in one Solver generate, one "
                 "update (b, β chained per sample). The paper and the official code use 1."),
        "source": "kit", "min": 1})

    # --- rewards --------------------------------------------------------------------------
    reward: Literal["continuous", "discrete"] = field(default="continuous", metadata={
        "help": "Solver reward: continuous p(a)^γ (EvoLMM) or discrete majority (ablation).",
        "source": "paper Tab. 1"})
    solver_soft_gamma: float = field(default=0.7, metadata={
        "help": "γ: softness exponent of the continuous reward.",
        "source": "paper Eq. 3 / official `solver_soft_gamma`", "range": (0.0, math.inf, False)})
    len_penalty_weight: float = field(default=0.10, metadata={
        "help": "λ_len: length-penalty weight.",
        "source": "official `len_penalty_weight`", "range": (0.0, 1.0, True)})
    len_penalty_target_words: int = field(default=6, metadata={
        "help": "τ: words allowed before <answer> without penalty.",
        "source": "official `len_penalty_target_words`", "min": 1})
    prop_entropy_mu: float = field(default=0.90, metadata={
        "help": "μ_H: centre of the Proposer's entropy band-pass (nats).",
        "source": "paper Eq. 4 / official `prop_entropy_mu`", "range": (0.0, math.inf, True)})
    prop_entropy_sigma: float = field(default=0.35, metadata={
        "help": "σ_H: width of the band-pass.",
        "source": "paper Eq. 4 / official `prop_entropy_sigma`", "range": (0.0, math.inf, False)})

    # --- optimisation ---------------------------------------------------------------------
    proposer_update_freq: int = field(default=5, metadata={
        "help": "k: update the Proposer every k steps.",
        "source": "official train.sh `--proposer_update_freq 5`", "min": 1})
    lr: float = field(default=1e-6, metadata={
        "help": "AdamW learning rate, per adapter.",
        "source": "official `lr`", "range": (0.0, math.inf, False)})
    weight_decay: float = field(default=0.01, metadata={
        "help": "AdamW weight decay.",
        "source": "official `weight_decay`", "range": (0.0, math.inf, True)})
    grad_clip: float = field(default=1.0, metadata={
        "help": "Gradient-norm clip.",
        "source": "official `grad_clip`", "range": (0.0, math.inf, False)})
    kl_coef: float = field(default=1e-3, metadata={
        "help": "β0: initial KL coefficient.",
        "source": "official `kl_coef`", "range": (0.0, math.inf, True)})
    kl_target: float = field(default=0.02, metadata={
        "help": "KL target of the adaptive β controller.",
        "source": "paper §3.4 / official `kl_target`", "range": (0.0, math.inf, False)})
    kl_adapt_rate: float = field(default=0.10, metadata={
        "help": "Rate of β ← β·exp(rate·(KL−target)/target).",
        "source": "official `kl_adapt_rate`", "range": (0.0, math.inf, True)})
    kl_min: float = field(default=1e-8, metadata={
        "help": "Lower clip of β.",
        "source": "official", "range": (0.0, math.inf, True)})
    kl_max: float = field(default=1e2, metadata={
        "help": "Upper clip of β.",
        "source": "official", "range": (0.0, math.inf, False)})
    baseline_momentum: float = field(default=0.9, metadata={
        "help": "EMA momentum of the reward baselines b_sol, b_prop.",
        "source": "official `momentum`", "range": (0.0, 1.0, True)})
    advantage: Literal["ema", "group"] = field(default="ema", metadata={
        "help": "ema: r − b (paper); group: (r − mean)/std over the N (GRPO-style).",
        "source": "kit"})
    update: Literal["lora", "qlora", "full"] = field(default="lora", metadata={
        "help": ("lora (paper), qlora (4-bit base weights, GPU; implies load_in_4bit) or full (all language-model "
                 "weights)."),
        "source": "paper §4.4"})
    update_mode: Literal["auto", "batched", "sequential"] = field(default="auto", metadata={
        "help": ("batched: N completions in one forward/backward; sequential: one AdamW step per completion, as "
                 "official; auto: sequential under recipe='official', else batched."),
        "source": "kit"})
    kl_chunk_size: int = field(default=64, metadata={
        "help": "Completion positions per chunk when computing the full-vocabulary KL.",
        "source": "kit", "min": 1})

    # --- LoRA -----------------------------------------------------------------------------
    lora_r: int = field(default=16, metadata={
        "help": "LoRA rank r.",
        "source": "official `lora_r`", "min": 1})
    lora_alpha: int = field(default=32, metadata={
        "help": "LoRA α.",
        "source": "official `lora_alpha`", "min": 0})
    lora_dropout: float = field(default=0.05, metadata={
        "help": "LoRA dropout.",
        "source": "official `lora_dropout`", "range": (0.0, 1.0, True)})
    lora_target_modules: tuple[str, ...] = field(default=LANGUAGE_MODEL_LORA_TARGETS, metadata={
        "help": ("Projection names adapted. recipe='paper': in the language model only; recipe='official': every "
                 "module whose name ends with one of them, so the vision blocks' MLPs too (the official list's extra "
                 "`mm_projector` matches nothing in Qwen2.5-VL)."),
        "source": "official `lora_targets`"})
    freeze_vision: bool = field(default=True, metadata={
        "help": "Vision tower frozen.",
        "source": "official `freeze_vision`"})

    # --- run ------------------------------------------------------------------------------
    seed: int = field(default=42, metadata={
        "help": "Seed of the image order, sampling and initialisation.",
        "source": "official `seed`", "min": 0})
    total_steps: int = field(default=100, metadata={
        "help": "Training steps (one image each).",
        "source": "official default 100 (paper run: 16180)", "min": 1})
    data_dir: str = field(default="data/images", metadata={
        "help": "Image pool folder, scanned recursively.",
        "source": "official `data_dir`", "expected": "a folder path"})
    output_dir: str = field(default="runs/evolmm", metadata={
        "help": "Where log.jsonl and checkpoint-<step>/ go.",
        "source": "kit", "expected": "a folder path"})
    save_every: int = field(default=50, metadata={
        "help": "Checkpoint every M steps (0: only at the end).",
        "source": "official `save_every`", "min": 0})
    max_checkpoints: int = field(default=2, metadata={
        "help": "Keep the last K checkpoints.",
        "source": "official `max_checkpoints`", "min": 1})
    report_to: Literal["none", "tensorboard", "trackio", "wandb"] = field(default="none", metadata={
        "help": "Tracker: none, tensorboard, trackio or wandb.",
        "source": "kit"})
    signal_window: int = field(default=50, metadata={
        "help": ("Every this many steps, check the last this many for a reward without signal (identical Solver "
                 "samples, β at its floor, KL exactly 0) and warn once per cause (also in log.jsonl); 0: never."),
        "source": "kit", "min": 0})

    def __post_init__(self) -> None:
        targets = self.lora_target_modules
        if isinstance(targets, str):
            targets = [t.strip() for t in targets.split(",") if t.strip()]
        if not isinstance(targets, (list, tuple)) or not targets or not all(isinstance(t, str) and t for t in targets):
            raise ConfigError(f"lora_target_modules={self.lora_target_modules!r}: expected module names "
                              "(a list, or a comma-separated string)")
        self.lora_target_modules = tuple(targets)
        for name, kind in _types().items():  # YAML 1.1 reads "1e-6" as a string: accept it for floats
            v = getattr(self, name)
            if kind is float and isinstance(v, str):
                try:
                    setattr(self, name, float(v))
                except ValueError:
                    raise ConfigError(f"{name}={v!r}: expected a number") from None
            elif kind is float and isinstance(v, int) and not isinstance(v, bool):
                setattr(self, name, float(v))
        self.validate()

    # -- validation ---------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field; never changes a value.

        Each field is checked against its type and its metadata (``min``, ``range``, ``expected``) by
        :func:`_check_field`; what relates two fields comes after."""
        for f in dataclasses.fields(self):
            _check_field(f.name, getattr(self, f.name), _types()[f.name], f.metadata)
        if self.kl_min > self.kl_max:
            raise ConfigError(f"kl_min={self.kl_min!r}: must not exceed kl_max={self.kl_max!r}")
        recipe = recipe_of(self)  # what the recipe runs (recipes.py says why)
        if self.update not in recipe.updates:
            raise ConfigError(f"recipe={self.recipe!r} with update={self.update!r}: the recipe trains "
                              f"{' or '.join(recipe.updates)} (the official script's shared backbone trains LoRA adapters)")
        if self.backend not in recipe.backends:
            raise ConfigError(f"recipe={self.recipe!r} with backend={self.backend!r}: the recipe runs on "
                              f"{' or '.join(recipe.backends)} (the official script runs transformers + peft)")
        if recipe.max_images_per_step is not None and self.images_per_step > recipe.max_images_per_step:
            raise ConfigError(f"images_per_step={self.images_per_step!r}: recipe={self.recipe!r} takes at most "
                              f"{recipe.max_images_per_step} image(s) per step; use recipe='paper' for more")
        if self.update_mode != "auto" and self.update_mode not in recipe.update_loops:
            raise ConfigError(f"update_mode={self.update_mode!r} with recipe={self.recipe!r}: the recipe runs "
                              f"update_mode {' or '.join(('auto',) + recipe.update_loops)} (the official loop takes "
                              "one AdamW step per completion)")
        if self.images_per_step > 1 and self.update_loop != "batched":
            raise ConfigError(f"images_per_step={self.images_per_step!r}: several images per step need "
                              "update_mode='batched' (one Solver generate and one update over all B×N answers)")

    # -- what the settings imply ----------------------------------------------------------
    @property
    def load_4bit(self) -> bool:
        """Whether the base weights load in 4 bits: ``load_in_4bit``, or ``update="qlora"``."""
        return self.load_in_4bit or self.update == "qlora"

    @property
    def update_loop(self) -> str:
        """``batched`` or ``sequential``: ``update_mode``, with ``auto`` → the recipe's first update loop."""
        if self.update_mode != "auto":
            return self.update_mode
        return recipe_of(self).update_loops[0]

    # -- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lora_target_modules"] = list(self.lora_target_modules)
        return d

    def to_yaml(self, sources: dict[str, str] | None = None) -> str:
        """One ``field: value`` line per field; with ``sources``, each followed by ``# from: <where it was set>``."""
        lines = []
        for key, value in self.to_dict().items():
            line = f"{key}: {yaml.safe_dump([value], default_flow_style=True, width=10_000).strip()[1:-1]}"
            lines.append(f"{line}  # from: {sources[key]}" if sources and key in sources else line)
        return "\n".join(lines) + "\n"

    def save_yaml(self, path: str | Path, sources: dict[str, str] | None = None) -> Path:
        """Write :meth:`to_yaml` to ``path`` (it loads back with :meth:`from_yaml`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(sources))
        return path

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "EvoLMMConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown config field (known: {', '.join(sorted(known))})")
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "EvoLMMConfig":
        return cls.from_dict(yaml_fields(path))

    def replace(self, **overrides: Any) -> "EvoLMMConfig":
        """A copy with ``overrides`` applied (validated)."""
        return self.from_dict({**self.to_dict(), **overrides})

    def with_overrides(self, pairs: list[str]) -> "EvoLMMConfig":
        """Apply ``field=value`` strings (values parsed as YAML scalars), as the CLI does."""
        return self.replace(**parse_overrides(pairs))


def yaml_fields(path: str | Path) -> dict[str, Any]:
    """The ``field: value`` mapping of a YAML config file (checked when a config is built from it)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of field: value")
    return values


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["lr=1e-5", "freeze_vision=false"]`` → ``{"lr": 1e-05, "freeze_vision": False}`` (YAML scalars)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"{pair!r}: expected field=value")
        key, raw = pair.split("=", 1)
        values[key.strip()] = yaml.safe_load(raw)
    return values


def _check_field(name: str, value: Any, kind: Any, meta) -> None:
    """One field against its type and metadata: a :class:`ConfigError` naming it, or nothing."""
    optional = get_origin(kind) in (Union, types.UnionType) and type(None) in get_args(kind)
    if optional:
        if value is None:
            return
        kind = next(a for a in get_args(kind) if a is not type(None))
    none = "None or " if optional else ""
    if get_origin(kind) is Literal:
        if value not in get_args(kind):
            raise ConfigError(f"{name}={value!r}: expected one of {', '.join(get_args(kind))}")
    elif kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}={value!r}: expected true or false")
    elif kind is int:
        low = meta.get("min", -math.inf)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}={value!r}: expected {none}an integer >= {low}")
    elif kind is float:
        lo, hi, lo_inclusive = meta.get("range", (-math.inf, math.inf, True))
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value <= hi
        if not (ok and (value >= lo if lo_inclusive else value > lo)):
            raise ConfigError(f"{name}={value!r}: expected a number in {'[' if lo_inclusive else '('}{lo}, {hi}]")
    elif kind is str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{name}={value!r}: expected {meta.get('expected', 'a non-empty string')}")


@functools.cache
def _types() -> dict[str, Any]:
    """Each field's resolved type (read once: every config construction and validation uses it)."""
    return get_type_hints(EvoLMMConfig)


@functools.cache
def choices_of() -> dict[str, tuple[str, ...]]:
    """Field → its allowed values, read from the ``Literal`` type of each choice field."""
    return {name: get_args(t) for name, t in _types().items() if get_origin(t) is Literal}


@functools.cache
def _defaults() -> tuple[tuple[str, Any], ...]:
    return tuple((f.name, f.default) for f in dataclasses.fields(EvoLMMConfig))


def field_defaults() -> dict[str, Any]:
    """Field → its default value (the paper's / official values unless the field's source says "kit")."""
    return dict(_defaults())


RECIPES = get_args(_types()["recipe"])


def config_fields() -> list[dict[str, str]]:
    """(field, default, meaning, source) rows for documentation tables and notebooks, from the metadata."""
    return [{"field": f.name, "default": repr(f.default), "meaning": f.metadata["help"], "source": f.metadata["source"]}
            for f in dataclasses.fields(EvoLMMConfig)]


def _flag_type(t):
    """The argparse ``type`` for a field: scalars as themselves, bools and None-able/tuple values as YAML."""
    return t if t in (int, float, str) else yaml.safe_load


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One ``--field-name VALUE`` flag per config field, its help and source from the metadata (default: unset)."""
    group = parser.add_argument_group("config fields (override --config; see papers/evolmm.md)")
    for f in dataclasses.fields(EvoLMMConfig):
        choices = choices_of().get(f.name)
        group.add_argument("--" + f.name.replace("_", "-"), dest=f"cfg_{f.name}", default=None, choices=choices,
                           type=None if choices else _flag_type(_types()[f.name]), metavar=None if choices else f.name.upper(),
                           help=f"{f.metadata['help']} [{f.metadata['source']}; default {f.default!r}]".replace("%", "%%"))


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields set by :func:`add_config_flags` flags."""
    return {f.name: v for f in dataclasses.fields(EvoLMMConfig) if (v := getattr(args, f"cfg_{f.name}", None)) is not None}
