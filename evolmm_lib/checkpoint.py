"""Atomic, resumable checkpoints (official: write to a temporary folder, then ``os.replace``).

``output_dir/checkpoint-<step>/`` holds ``solver/`` and ``proposer/`` (PEFT adapter folders, or the
full language-model weights for ``update="full"``) and ``trainer_state.pt`` (optimisers, both β,
both baselines, RNG states, pool position, queued Proposer questions). The trainer state is plain data
(tensors, numbers, strings, lists, dicts): it loads with ``torch.load(weights_only=True)``, which runs no
pickled code. A folder is renamed into place only after everything in it is written, so a failure while
saving leaves the previous checkpoints untouched; :func:`is_complete` is the one test of a checkpoint
used everywhere (training resume, evaluation). Only the last K are kept.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from .config import ROLES
from .errors import UserError

STATE_FILE = "trainer_state.pt"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "model.safetensors.index.json")
"""A role folder holds one of these: a PEFT adapter, or the whole weights of a full update."""
_NAME = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be read (truncated or corrupt files); the message names it."""


def rng_state() -> dict:
    """Python, NumPy, torch (and CUDA) generator states, as plain data."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x):
    """``random.getstate()`` as saved (tuples may come back as lists) → nested tuples."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def is_complete(path: str | os.PathLike) -> bool:
    """A ``checkpoint-<step>`` folder with the trainer state and both roles' weights."""
    p = Path(path)
    return (bool(_NAME.match(p.name)) and (p / STATE_FILE).is_file()
            and all(any((p / role / f).is_file() for f in WEIGHT_FILES) for role in ROLES))


def checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(_NAME.match(p.name).group(1)), p) for p in root.iterdir() if is_complete(p)]
    return [p for _, p in sorted(found)]


def incomplete_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """``checkpoint-<step>`` folders in ``output_dir`` that :func:`is_complete` rejects (copied in part, edited)."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _NAME.match(p.name) and p.is_dir() and not is_complete(p))


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    found = checkpoints(output_dir)
    return found[-1] if found else None


def save_checkpoint(output_dir: str | os.PathLike, step: int, backbone, state: dict, keep: int,
                    weights: dict | None = None) -> Path:
    """Write ``checkpoint-<step>`` atomically, then delete all but the newest ``keep``.

    ``weights``: the roles' whole weights when the backbone's own are sharded (see ``Backbone.save_adapters``).
    """
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"checkpoint-{step}"
    tmp = root / f".tmp-checkpoint-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        backbone.save_adapters(tmp, weights)
        torch.save(state, tmp / STATE_FILE)
        if final.exists():  # re-saving the same step: move the old one aside first
            old = root / f".old-checkpoint-{step}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_state(checkpoint: str | os.PathLike) -> dict:
    path = Path(checkpoint) / STATE_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated / not a torch file
        raise CheckpointError(f"{path}: cannot read the trainer state ({type(e).__name__}: {e}); remove "
                              f"{Path(checkpoint).name} to resume from the one before") from e


KINDS = ("lora", "qlora", "full")
"""What a checkpoint's role folders hold: LoRA adapters (over a 4-bit base for qlora), or whole models (full)."""


def saved_config(checkpoint: str | os.PathLike) -> dict | None:
    """The run's config as the trainer saved it in ``trainer_state.pt``; None when the folder has no trainer state.

    Read memory-mapped: the optimiser states beside it (those of a whole model, for ``update="full"``) stay on disk.
    """
    path = Path(checkpoint) / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # noqa: BLE001 - truncated / not a torch file
        raise CheckpointError(f"{path}: cannot read the trainer state ({type(e).__name__}: {e})") from e
    return state.get("config") if isinstance(state, dict) else None


def checkpoint_kind(checkpoint: str | os.PathLike) -> str:
    """One of :data:`KINDS`: the saved config's ``update`` (``load_in_4bit`` under LoRA counts as qlora).

    A folder without a trainer state (only ``save_adapters`` output) is told by its files: whole models
    (``config.json``, no ``adapter_config.json``) in both role folders are "full", anything else "lora".
    """
    config = saved_config(checkpoint)
    if config is not None and config.get("update") in KINDS:
        if config["update"] == "lora" and config.get("load_in_4bit"):
            return "qlora"
        return config["update"]
    root = Path(checkpoint)
    whole = all((root / r / "config.json").is_file() and not (root / r / "adapter_config.json").is_file()
                for r in ROLES)
    return "full" if whole else "lora"


def restore_weights(backbone, checkpoint: str | os.PathLike) -> None:
    """Copy the checkpoint's solver and proposer weights into an already loaded ``backbone``."""
    root = Path(checkpoint)
    if backbone.is_lora:
        from peft.utils import load_peft_weights, set_peft_model_state_dict

        for role in ROLES:
            try:
                weights = load_peft_weights(str(root / role), device=str(backbone.device))
            except Exception as e:  # noqa: BLE001 - missing / truncated adapter file
                raise CheckpointError(f"{root / role}: cannot read the adapter weights ({type(e).__name__}: "
                                      f"{e}); remove {root.name} to resume from the one before") from e
            result = set_peft_model_state_dict(backbone.model, weights, adapter_name=role)
            if getattr(result, "unexpected_keys", None):
                raise RuntimeError(f"{root / role}: unexpected adapter keys {result.unexpected_keys[:3]}")
        return
    from transformers import AutoModelForImageTextToText

    for role in ROLES:  # full update: each role is a whole model saved with save_pretrained
        try:
            saved = AutoModelForImageTextToText.from_pretrained(root / role,
                                                                dtype=next(backbone.model.parameters()).dtype)
            backbone.role_models[role].load_state_dict(saved.state_dict())
        except Exception as e:  # noqa: BLE001 - missing / truncated / mismatched model files
            raise CheckpointError(f"{root / role}: cannot read the model weights ({type(e).__name__}: {e})") from e
