"""Load one vision-language backbone with two roles: Solver and Proposer (paper §3.1).

``update="lora"`` (paper): one frozen base with two named LoRA adapters, ``solver`` and
``proposer``, on the language model only; the frozen reference π_ref is the same model with
adapters disabled. ``update="full"``: each role owns a trainable copy of the model and the
reference is a third, frozen copy. ``recipe="official"`` builds the adapters as the official script
does: seeded with ``transformers.set_seed``, a causal-LM ``LoraConfig`` whose target names match any
module ending with them (so the vision blocks' MLPs are wrapped too), ``solver`` created first.
Under ``accelerate launch`` the training forwards are wrapped by the engine
(:mod:`evolmm_lib.distributed`); FSDP shards the trained weights. Backend ``auto`` uses Unsloth's
``FastVisionModel`` on a CUDA GPU when unsloth is installed, else transformers + peft; both give the
same :class:`Backbone`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch

from .config import ROLES, EvoLMMConfig
from .errors import UserError
from .recipes import recipe_of

log = logging.getLogger("evolmm")


PRESETS: dict[str, str] = {
    "tiny": "embedded tiny Qwen2.5-VL (built offline into the cache)",
    "miniature": "2.2M-parameter Qwen2.5-VL warm-started on the miniature world (shipped in data/miniature/)",
    "qwen2.5-vl-3b": "Qwen/Qwen2.5-VL-3B-Instruct",
    "qwen2.5-vl-7b": "Qwen/Qwen2.5-VL-7B-Instruct",
    "qwen2.5-vl-72b": "Qwen/Qwen2.5-VL-72B-Instruct",
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


class BackboneError(UserError, RuntimeError):
    """The backbone cannot be loaded as asked (unknown preset, no GPU for Unsloth, ...)."""


def resolve_model(name: str) -> str:
    """Preset name → hub id or local folder; hub ids and existing paths pass through."""
    if name == "tiny":
        from .tiny_model import ensure_tiny_model

        return str(ensure_tiny_model())
    if name == "miniature":
        from .miniature.warmstart import ensure_warmstart

        return str(ensure_warmstart())
    if name in PRESETS:
        return PRESETS[name]
    if name.startswith("random:"):  # real shapes, random weights (random_presets.py)
        from .random_presets import RandomPresetError, parse

        try:
            parse(name)
        except RandomPresetError as e:
            raise BackboneError(str(e)) from None
        return name
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if _HUB_ID.match(name) and not name.startswith((".", "/")):
        return name
    raise BackboneError(
        f"unknown model {name!r}: expected a preset ({', '.join(PRESETS)}), a hub id like "
        "'Qwen/Qwen2.5-VL-7B-Instruct', or an existing local folder"
    )


def _require_cached_when_offline(repo_id: str) -> str:
    """``repo_id`` unchanged; offline (``HF_HUB_OFFLINE``), a :class:`BackboneError` unless it is cached."""
    from huggingface_hub import constants, try_to_load_from_cache

    if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        raise BackboneError(f"model {repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
                            f"download it first (hf download {repo_id}) or pass a local folder")
    return repo_id


def _config_for_checkpoint(config: EvoLMMConfig, root: Path) -> EvoLMMConfig:
    """``config`` with ``update`` set to the checkpoint's kind (qlora: a 4-bit base; full: whole models)."""
    from .checkpoint import checkpoint_kind

    kind = checkpoint_kind(root)
    if kind == "full" and config.load_in_4bit:
        raise BackboneError(f"{root} is a full checkpoint (whole models, update='full'): 4-bit loading applies to "
                            "the base under LoRA adapters; leave load_in_4bit / --load-in-4bit off")
    if kind != config.update:
        log.info("%s holds a %s checkpoint: loading it as update=%r", root, kind, kind)
    return config.replace(update=kind) if kind != config.update else config


def _check_adapter_folders(root: Path, whole_models: bool = False) -> None:
    """A :class:`BackboneError` unless ``root/solver`` and ``root/proposer`` each hold a PEFT adapter
    (``whole_models``: a whole model saved with ``save_pretrained``)."""
    if whole_models:
        for r in ROLES:
            if not (root / r / "config.json").is_file():
                raise BackboneError(f"{root / r}: no config.json (expected a full checkpoint with solver/ and proposer/)")
            if not any((root / r / f).is_file() for f in ("model.safetensors", "model.safetensors.index.json")):
                raise BackboneError(f"{root / r}: no model.safetensors (incomplete checkpoint)")
        return
    for r in ROLES:
        if not (root / r / "adapter_config.json").is_file():
            raise BackboneError(f"{root / r}: no adapter_config.json (expected a checkpoint with solver/ and proposer/)")
        if not any((root / r / f).is_file() for f in ("adapter_model.safetensors", "adapter_model.bin")):
            raise BackboneError(f"{root / r}: no adapter_model.safetensors (incomplete checkpoint)")


def cuda_available() -> bool:
    return torch.cuda.is_available()


def choose_backend(requested: str) -> str:
    """``auto`` → unsloth when a CUDA GPU and the unsloth package are present, else transformers."""
    if requested == "transformers":
        return "transformers"
    import importlib.util

    has_unsloth = importlib.util.find_spec("unsloth") is not None
    if requested == "unsloth":
        if not cuda_available():
            raise BackboneError("backend='unsloth' needs a CUDA GPU and none is visible; use backend='auto' "
                                "or 'transformers' to run on the CPU")
        if not has_unsloth:
            raise BackboneError("backend='unsloth' needs the unsloth package: pip install -e '.[gpu]'")
        return "unsloth"
    return "unsloth" if (cuda_available() and has_unsloth) else "transformers"


def resolve_dtype(name: str) -> torch.dtype:
    """auto → bfloat16 on a bf16-capable GPU, else float32 (official ``_safe_dtype``)."""
    if name == "auto":
        return torch.bfloat16 if cuda_available() and torch.cuda.is_bf16_supported() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def language_model_lora_regex(targets: tuple[str, ...]) -> str:
    """Module-name regex that hits ``targets`` in the language model only (never the vision tower)."""
    return r".*language_model.*\.(" + "|".join(re.escape(t) for t in targets) + r")$"


def lora_config(config: EvoLMMConfig):
    from peft import LoraConfig

    if recipe_of(config).lora_targets == "name_suffix":  # official VLMCore: name list (suffix match), causal LM
        return LoraConfig(task_type="CAUSAL_LM", r=config.lora_r, lora_alpha=config.lora_alpha,
                          lora_dropout=config.lora_dropout, target_modules=list(config.lora_target_modules))
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=language_model_lora_regex(config.lora_target_modules), bias="none")


@dataclass
class Backbone:
    """A loaded backbone: use :meth:`role` to run the Solver, the Proposer or the frozen reference."""

    model: torch.nn.Module
    processor: object
    backend: str
    name: str
    config: EvoLMMConfig
    role_models: dict[str, torch.nn.Module] = field(default_factory=dict)  # full update only
    reference_model: torch.nn.Module | None = None  # full update only
    forwards: dict[str, torch.nn.Module] = field(default_factory=dict)  # engine-wrapped training forward per role
    sharded_roots: dict = field(default_factory=dict)  # FSDP2 modules whose top level role() gathers, by role

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def is_lora(self) -> bool:
        return not self.role_models

    @contextlib.contextmanager
    def role(self, name: str | None) -> Iterator[torch.nn.Module]:
        """Yield the module that plays ``name`` ("solver", "proposer"; None = frozen reference π_ref)."""
        if name is not None and name not in ROLES:
            raise ValueError(f"role must be one of {ROLES} or None, got {name!r}")
        if name in self.sharded_roots:  # generate() and the reference pass skip the FSDP wrapper's forward hook
            self.sharded_roots[name].unshard()
        if not self.is_lora:
            yield self.reference_model if name is None else self.role_models[name]
            return
        if name is None:
            with self.model.disable_adapter():
                yield self.model
            return
        previous = self.model.active_adapter
        self.model.set_adapter(name)
        if self.backend == "unsloth":
            _unsloth_rearm_training(self.model, self.tokenizer)
        try:
            yield self.model
        finally:
            self.model.set_adapter(previous)

    def training_forward(self, role: str) -> torch.nn.Module:
        """The module whose call gives π_ref's and ``role``'s log-probs and KL (engine-wrapped once prepared)."""
        if role not in self.forwards:
            from .logprobs import PolicyForward

            self.forwards[role] = PolicyForward(self, self.model if self.is_lora else self.role_models[role])
        return self.forwards[role]

    def trainable_parameters(self, role: str) -> list[torch.nn.Parameter]:
        """Parameters the ``role``'s optimiser updates (its LoRA weights, or its model copy's LM)."""
        if not self.is_lora:
            return [p for n, p in self.role_models[role].named_parameters() if "visual" not in n]
        params = [p for n, p in self.model.named_parameters() if "lora_" in n and f".{role}." in n]
        if not params:
            raise BackboneError(f"no LoRA parameters found for role {role!r}")
        return params

    def parameter_summary(self) -> dict[str, int]:
        """Parameter counts: total, per role (trainable), and vision tower."""
        total = sum(p.numel() for p in self.model.parameters())
        out = {"total": total, "vision": sum(p.numel() for n, p in self.model.named_parameters() if "visual" in n)}
        for r in ROLES:
            out[r] = sum(p.numel() for p in self.trainable_parameters(r))
        return out

    def save_adapters(self, path: str | os.PathLike, weights: dict | None = None) -> None:
        """Write ``path/solver`` and ``path/proposer`` (PEFT adapter folders, or full LM weights).

        ``weights`` (FSDP): whole tensors gathered from the shards, by parameter name (LoRA) or by role (full).
        """
        path = Path(path)
        if self.is_lora:
            self.model.save_pretrained(path, selected_adapters=list(ROLES), state_dict=weights)
            return
        for r in ROLES:
            self.role_models[r].save_pretrained(path / r, state_dict=None if weights is None else weights[r])


def _load_transformers(model_id: str, config: EvoLMMConfig):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if model_id.startswith("random:"):
        from .random_presets import load_random

        return load_random(model_id, resolve_dtype(config.dtype), place(model_id, config).device_map,
                           config.max_image_pixels, config.seed)
    kwargs = {"dtype": resolve_dtype(config.dtype)}
    if config.load_4bit:
        kwargs["quantization_config"] = _nf4_config(config)
    device_map = place(model_id, config).device_map
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForImageTextToText.from_pretrained(model_id, **kwargs)
    if config.load_4bit:
        _keep_4bit_layout_trainable(model)
    processor = AutoProcessor.from_pretrained(model_id, **_processor_kwargs(config))
    return model, processor


def _keep_4bit_layout_trainable(model) -> None:
    """On a CPU with AVX512-BF16, bitsandbytes 0.50 repacks a ``Linear4bit`` weight into an inference-only layout
    at its first eval-mode forward (``generate``) and keeps it after ``train()``, so the next update's forward
    fails ("a view of a leaf Variable ... in-place"). The kit alternates the two every step: keep the one layout
    that serves both (GPUs never repack)."""
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def _nf4_config(config: EvoLMMConfig):
    """QLoRA's base weights: nf4 4-bit through bitsandbytes (its CUDA kernels on a GPU, its CPU backend else).

    peft's ``prepare_model_for_kbit_training`` is not called. It would cast every weight that is not 4-bit
    (embeddings, LM head, norms) to fp32, which for a 7B adds 2.2 GB on the small GPUs QLoRA is for, and turn on
    gradient checkpointing. The trainer needs neither: gradients reach the LoRA weights without input grads,
    log-probs and KL are computed in fp32 anyway (``logprobs._chunk_stats``), and a 4-bit run then differs from
    a LoRA run only in its base weights.
    """
    if config.update == "full":
        raise BackboneError("update='full' trains (and a full checkpoint holds) whole weights, which cannot be "
                            "4-bit: use update='qlora' for LoRA adapters over a 4-bit base, or leave load_in_4bit off")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise BackboneError("load_in_4bit / update='qlora' needs bitsandbytes (CUDA or CPU): "
                            "pip install -e '.[qlora]'") from None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_compute_dtype=resolve_dtype(config.dtype))


def use_cpu_threads(config: EvoLMMConfig, device: torch.device) -> None:
    """``config.cpu_threads`` torch threads for a model on the CPU (0, or OMP_NUM_THREADS in the environment:
    left as it is)."""
    if device.type == "cpu" and config.cpu_threads and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(config.cpu_threads)
        log.info("torch threads: %d (cpu_threads; OMP_NUM_THREADS overrides)", config.cpu_threads)


def place(model_id: str, config: EvoLMMConfig):
    """This process's :class:`~evolmm_lib.placement.Placement` of ``model_id`` (one rule for every loader)."""
    from .placement import loaded_weight_bytes, placement_for

    size = None
    if cuda_available():  # the size matters only to choose among GPUs
        size = loaded_weight_bytes(model_id, resolve_dtype(config.dtype).itemsize, config.load_4bit)
    placement = placement_for(size, config.model)
    log.info("placement: %s", placement.reason)
    return placement


def _processor_kwargs(config: EvoLMMConfig) -> dict:
    return {"max_pixels": config.max_image_pixels} if config.max_image_pixels else {}


def unsloth_load_kwargs(config: EvoLMMConfig, device_map: str | dict | None = None) -> dict:
    """Keywords the kit passes to Unsloth's ``FastVisionModel.from_pretrained`` (guarded by a test);
    ``device_map`` from :func:`place` (Unsloth's own default is one sequential fill of every GPU)."""
    kwargs = {"load_in_4bit": config.load_4bit, "use_gradient_checkpointing": "unsloth",
              "full_finetuning": config.update == "full", "dtype": resolve_dtype(config.dtype)}
    if device_map is not None:
        kwargs["device_map"] = device_map
    return kwargs


def unsloth_peft_kwargs(config: EvoLMMConfig) -> dict:
    """Keywords for ``FastVisionModel.get_peft_model``: LoRA on the language layers only."""
    return {"finetune_vision_layers": False, "finetune_language_layers": True,
            "finetune_attention_modules": True, "finetune_mlp_modules": True,
            "r": config.lora_r, "lora_alpha": config.lora_alpha, "lora_dropout": config.lora_dropout,
            "bias": "none", "random_state": config.seed, "use_gradient_checkpointing": "unsloth"}


def _load_unsloth(model_id: str, config: EvoLMMConfig):
    if model_id.startswith("random:"):
        raise BackboneError(f"{model_id}: random presets load through backend='transformers'")
    from unsloth import FastVisionModel  # imported only here: it needs a GPU

    model, processor = FastVisionModel.from_pretrained(
        model_id, **unsloth_load_kwargs(config, place(model_id, config).device_map))
    if config.max_image_pixels:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(model_id, **_processor_kwargs(config))
    return model, processor


def _add_lora_unsloth(model, config: EvoLMMConfig):
    """Unsloth's LoRA (its adapter is PEFT's "default"), copied into one named adapter per role."""
    from unsloth import FastVisionModel

    peft_model = FastVisionModel.get_peft_model(model, **unsloth_peft_kwargs(config))
    base_cfg = peft_model.peft_config["default"]
    for r in ROLES:
        peft_model.add_adapter(r, copy.deepcopy(base_cfg))
    peft_model.set_adapter("solver")
    peft_model.delete_adapter("default")
    return peft_model


def _unsloth_rearm_training(model, tokenizer) -> None:
    """Undo what Unsloth's ``generate`` leaves behind before a role is used again.

    Unsloth's generate wrapper calls ``FastVisionModel.for_inference`` itself, which switches
    gradient checkpointing off and never back; ``for_training`` re-arms it (and drops cached LoRA
    copies). The caller's train/eval mode and the left padding used for generation are kept.
    """
    from unsloth import FastVisionModel

    was_training = model.training
    FastVisionModel.for_training(model)
    model.train(was_training)
    tokenizer.padding_side = "left"


def load_backbone(
    model: str | None = None,
    backend: str | None = None,
    config: EvoLMMConfig | None = None,
    adapters_from: str | os.PathLike | None = None,
) -> Backbone:
    """Load ``model`` (preset, hub id or path) with Solver and Proposer roles.

    ``adapters_from`` is a checkpoint folder holding ``solver/`` and ``proposer/``; it is loaded as the kind of
    run that wrote it (:func:`~evolmm_lib.checkpoint.checkpoint_kind`): LoRA adapters, the same over a 4-bit base
    (qlora), or whole models (full), whatever ``config.update`` says.
    """
    config = config or EvoLMMConfig()
    config = config.replace(**{k: v for k, v in {"model": model, "backend": backend}.items() if v is not None})
    if adapters_from is not None:
        config = _config_for_checkpoint(config, Path(adapters_from))
    recipe = recipe_of(config)
    chosen = choose_backend(config.backend) if "unsloth" in recipe.backends else "transformers"
    model_id = resolve_model(config.model)
    if model_id.startswith("random:"):
        pass  # built from embedded shapes, nothing to download
    elif not Path(model_id).is_dir():
        _require_cached_when_offline(model_id)
    elif not (Path(model_id) / "config.json").is_file():
        raise BackboneError(f"{model_id}: no config.json (expected a model folder saved by save_pretrained)")
    if adapters_from is not None:
        _check_adapter_folders(Path(adapters_from), whole_models=config.update == "full")
    if recipe.seeding == "transformers_set_seed":  # official trainer: set_seed + random.seed before loading
        import random

        from transformers import set_seed

        set_seed(config.seed)
        random.seed(config.seed)
    else:
        torch.manual_seed(config.seed)
    if chosen == "unsloth":
        base, processor = _load_unsloth(model_id, config)
    else:
        try:
            base, processor = _load_transformers(model_id, config)
        except OSError as e:  # not on the hub / no network / not a model folder: transformers' own message
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BackboneError(f"cannot load model {model_id!r}: {reason}") from e
    processor.tokenizer.padding_side = "left"  # generation pads on the left (not saved with the tokenizer)
    use_cpu_threads(config, next(base.parameters()).device)
    for n, p in base.named_parameters():
        p.requires_grad_(False)
    log.info("EvoLMM backbone %s (%s) on %s via %s backend", config.model, model_id,
             next(base.parameters()).device, chosen)
    if config.update == "full":
        reference = base.eval()
        role_models = {r: copy.deepcopy(base) for r in ROLES}
        for m in role_models.values():
            for n, p in m.named_parameters():
                p.requires_grad_(not (config.freeze_vision and "visual" in n))
        backbone = Backbone(role_models["solver"], processor, chosen, config.model, config, role_models, reference)
        if adapters_from is not None:  # into the copies: they sit where the base was placed
            from .checkpoint import restore_weights

            restore_weights(backbone, adapters_from)
        return backbone

    if adapters_from is not None:
        from peft import PeftModel

        root = Path(adapters_from)
        try:
            peft_model = PeftModel.from_pretrained(base, root / "solver", adapter_name="solver", is_trainable=True)
            peft_model.load_adapter(root / "proposer", adapter_name="proposer", is_trainable=True)
        except Exception as e:  # noqa: BLE001 - unreadable or mismatched adapter files: name the folder
            raise BackboneError(f"{root}: cannot load the adapters ({type(e).__name__}: {e})") from e
    elif chosen == "unsloth":
        peft_model = _add_lora_unsloth(base, config)
    else:
        from peft import get_peft_model

        peft_model = get_peft_model(base, lora_config(config), adapter_name="solver")
        peft_model.add_adapter("proposer", lora_config(config))
    for n, p in peft_model.named_parameters():
        p.requires_grad_("lora_" in n)
    peft_model.set_adapter("solver")
    for n, p in peft_model.named_parameters():  # set_adapter freezes the inactive adapter: undo that
        p.requires_grad_("lora_" in n)
    peft_model.eval()
    return Backbone(peft_model, processor, chosen, config.model, config)
