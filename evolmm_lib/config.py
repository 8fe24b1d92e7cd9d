"""One dataclass holding every EvoLMM hyperparameter, with its source.

Sources: "paper" = arXiv 2511.16672; "official" = the authors' ``src/train.py`` / ``train.sh``;
"kit" = a choice of this kit (no counterpart upstream). ``papers/evolmm.md`` has the full table.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


LANGUAGE_MODEL_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

RECIPES = ("paper", "official")

_CHOICES = {
    "recipe": RECIPES,
    "backend": ("auto", "transformers", "unsloth"),
    "dtype": ("auto", "float32", "bfloat16", "float16"),
    "reward": ("continuous", "discrete"),
    "advantage": ("ema", "group"),
    "update": ("lora", "qlora", "full"),
    "update_mode": ("batched", "sequential"),
    "report_to": ("none", "tensorboard", "trackio", "wandb"),
}


@dataclass
class EvoLMMConfig:
    """EvoLMM hyperparameters. Defaults are the paper's / official code's unless marked "kit"."""

    # --- recipe ---------------------------------------------------------------------------
    recipe: str = "paper"
    """paper: the method as the paper describes it; official: what the official ``src/train.py`` runs
    (sampling from the checkpoint's generation_config, per-sample steps, re-tokenised text without the
    image in the update, the active adapter as KL reference, Proposer never updated, official image scan
    and LoRA targets). papers/evolmm.md "What the official code runs". kit."""

    # --- backbone -------------------------------------------------------------------------
    model: str = "tiny"
    """Preset name (tiny, qwen2.5-vl-3b/7b/72b), hub id or local path. kit (paper: Qwen2.5-VL-7B)."""
    backend: str = "auto"
    """auto: Unsloth on a CUDA GPU when installed, else transformers + peft. kit."""
    dtype: str = "auto"
    """auto: bfloat16 on a bf16 GPU, else float32 (official `_safe_dtype`)."""
    load_in_4bit: bool = False
    """4-bit base weights (QLoRA; GPU only). paper §4.4 ablation."""
    max_image_pixels: int | None = None
    """Cap on image pixels for the processor; None keeps the checkpoint's own. kit."""

    # --- rollout --------------------------------------------------------------------------
    num_solver_samples: int = 5
    """N: Solver samples per question. paper §3.2 / official `num_solver_samples`."""
    temperature: float = 1.0
    """Sampling temperature of both roles. official `temp`."""
    top_p: float = 1.0
    """Nucleus sampling threshold of both roles. official `top_p`."""
    max_new_tokens_solver: int = 128
    """Solver generation budget. official `max_new_tokens_solver`."""
    max_new_tokens_proposer: int = 128
    """Proposer generation budget. official `max_new_tokens_proposer`."""
    images_per_step: int = 1
    """B: images per step; B questions in one Proposer generate, B×N answers in one Solver generate, one update (b, β chained per sample). paper/official: 1. kit."""

    # --- rewards --------------------------------------------------------------------------
    reward: str = "continuous"
    """Solver reward: continuous p(a)^γ (EvoLMM) or discrete majority (ablation). paper Tab. 1."""
    solver_soft_gamma: float = 0.7
    """γ: softness exponent of the continuous reward. paper Eq. 3 / official `solver_soft_gamma`."""
    len_penalty_weight: float = 0.10
    """λ_len: length-penalty weight. official `len_penalty_weight`."""
    len_penalty_target_words: int = 6
    """τ: words allowed before <answer> without penalty. official `len_penalty_target_words`."""
    prop_entropy_mu: float = 0.90
    """μ_H: centre of the Proposer's entropy band-pass (nats). paper Eq. 4 / official."""
    prop_entropy_sigma: float = 0.35
    """σ_H: width of the band-pass. paper Eq. 4 / official."""

    # --- optimisation ---------------------------------------------------------------------
    proposer_update_freq: int = 5
    """k: update the Proposer every k steps. official train.sh `--proposer_update_freq 5`."""
    lr: float = 1e-6
    """AdamW learning rate, per adapter. official `lr`."""
    weight_decay: float = 0.01
    """AdamW weight decay. official `weight_decay`."""
    grad_clip: float = 1.0
    """Gradient-norm clip. official `grad_clip`."""
    kl_coef: float = 1e-3
    """β0: initial KL coefficient. official `kl_coef`."""
    kl_target: float = 0.02
    """KL target of the adaptive β controller. paper §3.4 / official `kl_target`."""
    kl_adapt_rate: float = 0.10
    """Rate of β ← β·exp(rate·(KL−target)/target). official `kl_adapt_rate`."""
    kl_min: float = 1e-8
    """Lower clip of β. official."""
    kl_max: float = 1e2
    """Upper clip of β. official."""
    baseline_momentum: float = 0.9
    """EMA momentum of the reward baselines b_sol, b_prop. official `momentum`."""
    advantage: str = "ema"
    """ema: r − b (paper); group: (r − mean)/std over the N (GRPO-style). kit option."""
    update: str = "lora"
    """lora (paper), qlora (4-bit base, GPU) or full (all language-model weights). paper §4.4."""
    update_mode: str = "batched"
    """batched: N completions in one forward/backward; sequential: one per step, as official (forced by recipe="official"). kit."""
    kl_chunk_size: int = 64
    """Completion positions per chunk when computing the full-vocabulary KL. kit."""

    # --- LoRA -----------------------------------------------------------------------------
    lora_r: int = 16
    """LoRA rank r. official `lora_r`."""
    lora_alpha: int = 32
    """LoRA α. official `lora_alpha`."""
    lora_dropout: float = 0.05
    """LoRA dropout. official `lora_dropout`."""
    lora_target_modules: tuple[str, ...] = LANGUAGE_MODEL_LORA_TARGETS
    """Projection names adapted. paper recipe: in the language model only. official recipe: every module whose
    name ends with one of them, so the vision blocks' MLPs too (the official list's extra `mm_projector`
    matches nothing in Qwen2.5-VL)."""
    freeze_vision: bool = True
    """Vision tower frozen. official `freeze_vision`."""

    # --- run ------------------------------------------------------------------------------
    seed: int = 42
    """Seed of the image order, sampling and initialisation. official `seed`."""
    total_steps: int = 100
    """Training steps (one image each). official default 100 (paper run: 16180)."""
    data_dir: str = "data/images"
    """Image pool folder, scanned recursively. official `data_dir`."""
    output_dir: str = "runs/evolmm"
    """Where log.jsonl and checkpoint-<step>/ go. kit."""
    save_every: int = 50
    """Checkpoint every M steps (0: only at the end). official `save_every`."""
    max_checkpoints: int = 2
    """Keep the last K checkpoints. official `max_checkpoints`."""
    report_to: str = "none"
    """Tracker: none, tensorboard, trackio or wandb. kit."""

    def __post_init__(self) -> None:
        targets = self.lora_target_modules
        if isinstance(targets, str):
            targets = [t.strip() for t in targets.split(",") if t.strip()]
        if not isinstance(targets, (list, tuple)) or not targets or not all(isinstance(t, str) and t for t in targets):
            raise ConfigError(f"lora_target_modules={self.lora_target_modules!r}: expected module names "
                              "(a list, or a comma-separated string)")
        self.lora_target_modules = tuple(targets)
        for f in dataclasses.fields(self):  # YAML 1.1 reads "1e-6" as a string: accept it for floats
            v = getattr(self, f.name)
            if f.type == "float" and isinstance(v, str):
                try:
                    setattr(self, f.name, float(v))
                except ValueError:
                    raise ConfigError(f"{f.name}={v!r}: expected a number") from None
            elif f.type == "float" and isinstance(v, int) and not isinstance(v, bool):
                setattr(self, f.name, float(v))
        self.validate()

    # -- validation ---------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        for name in ("load_in_4bit", "freeze_vision"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r}: expected true or false")
        for name in ("data_dir", "output_dir"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip():
                raise ConfigError(f"{name}={v!r}: expected a folder path")
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name}={getattr(self, name)!r}: expected one of {', '.join(choices)}")
        positive_ints = ("num_solver_samples", "max_new_tokens_solver", "max_new_tokens_proposer",
                         "proposer_update_freq", "lora_r", "total_steps", "max_checkpoints",
                         "kl_chunk_size", "len_penalty_target_words", "images_per_step")
        for name in positive_ints:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name}={v!r}: expected an integer >= 1")
        for name in ("save_every", "seed", "lora_alpha"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{name}={v!r}: expected an integer >= 0")
        ranges = {
            "temperature": (0.0, math.inf, False), "top_p": (0.0, 1.0, True),
            "solver_soft_gamma": (0.0, math.inf, False), "len_penalty_weight": (0.0, 1.0, True),
            "prop_entropy_mu": (0.0, math.inf, True), "prop_entropy_sigma": (0.0, math.inf, False),
            "lr": (0.0, math.inf, False), "weight_decay": (0.0, math.inf, True),
            "grad_clip": (0.0, math.inf, False), "kl_coef": (0.0, math.inf, True),
            "kl_target": (0.0, math.inf, False), "kl_adapt_rate": (0.0, math.inf, True),
            "kl_min": (0.0, math.inf, True), "kl_max": (0.0, math.inf, False),
            "baseline_momentum": (0.0, 1.0, True), "lora_dropout": (0.0, 1.0, True),
        }
        for name, (lo, hi, lo_inclusive) in ranges.items():
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v <= hi
            ok = ok and (v >= lo if lo_inclusive else v > lo)
            if not ok:
                bound = "[" if lo_inclusive else "("
                raise ConfigError(f"{name}={v!r}: expected a number in {bound}{lo}, {hi}]")
        if self.kl_min > self.kl_max:
            raise ConfigError(f"kl_min={self.kl_min!r}: must not exceed kl_max={self.kl_max!r}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"model={self.model!r}: expected a preset name, hub id or path")
        if self.max_image_pixels is not None and (not isinstance(self.max_image_pixels, int) or self.max_image_pixels < 784):
            raise ConfigError(f"max_image_pixels={self.max_image_pixels!r}: expected None or an integer >= 784")
        if self.update == "qlora" and not self.load_in_4bit:
            self.load_in_4bit = True
        if self.recipe == "official":
            if self.update == "full":
                raise ConfigError("recipe='official' with update='full': the official script's shared backbone "
                                  "trains LoRA adapters; use update='lora' (or 'qlora')")
            if self.backend == "unsloth":
                raise ConfigError("recipe='official' with backend='unsloth': the official script runs transformers "
                                  "+ peft; use backend='auto' or 'transformers'")
            if self.images_per_step != 1:
                raise ConfigError(f"images_per_step={self.images_per_step!r}: recipe='official' takes one image "
                                  "per step; use images_per_step=1 or recipe='paper'")
            self.update_mode = "sequential"  # the official loop: one AdamW step per completion
        if self.images_per_step > 1 and self.update_mode != "batched":
            raise ConfigError(f"images_per_step={self.images_per_step!r}: several images per step need "
                              "update_mode='batched' (one Solver generate and one update over all B×N answers)")

    # -- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lora_target_modules"] = list(self.lora_target_modules)
        return d

    def save_yaml(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
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
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of field: value")
        return cls.from_dict(values)

    def replace(self, **overrides: Any) -> "EvoLMMConfig":
        """A copy with ``overrides`` applied (validated)."""
        return self.from_dict({**self.to_dict(), **overrides})

    def with_overrides(self, pairs: list[str]) -> "EvoLMMConfig":
        """Apply ``field=value`` strings (values parsed as YAML scalars), as the CLI does."""
        values: dict[str, Any] = {}
        for pair in pairs:
            if "=" not in pair:
                raise ConfigError(f"{pair!r}: expected field=value")
            key, raw = pair.split("=", 1)
            values[key.strip()] = yaml.safe_load(raw)
        return self.replace(**values)


def config_fields() -> list[dict[str, str]]:
    """(name, default, doc) rows for documentation tables and notebooks."""
    import inspect

    src = inspect.getsource(EvoLMMConfig)
    docs: dict[str, str] = {}
    lines = src.splitlines()
    for i, line in enumerate(lines):
        s = line.strip()
        if ":" in s and "=" in s and not s.startswith(("#", '"', "def", "@")) and i + 1 < len(lines):
            name = s.split(":", 1)[0].strip()
            nxt = lines[i + 1].strip()
            if nxt.startswith('"""'):
                docs[name] = nxt.strip('"')
    return [
        {"field": f.name, "default": repr(getattr(EvoLMMConfig(), f.name)), "meaning": docs.get(f.name, "")}
        for f in dataclasses.fields(EvoLMMConfig)
    ]
