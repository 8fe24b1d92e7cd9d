"""Where the backbone's weights go, decided once from the launcher, the devices and the model's size.

:func:`choose_placement` is a pure function (no torch calls, no environment reads) so that every
case is unit-tested on a CPU machine; :func:`placement_for` gathers its inputs from this process.

| launcher                      | devices      | placement                                             |
|-------------------------------|--------------|-------------------------------------------------------|
| one process                   | no CUDA      | CPU (no ``device_map``)                               |
| one process                   | 1 GPU        | ``{"": 0}`` when the model fits it, else refused      |
| one process                   | several GPUs | ``{"": 0}`` when it fits one GPU, else ``"auto"``     |
| DDP / FSDP (``WORLD_SIZE`` > 1) | GPUs       | ``{"": local_rank}``: each rank on its own GPU        |
| DDP / FSDP                    | no CUDA      | CPU (gloo)                                            |

Never ``"auto"`` under a distributed launcher: accelerate's ``prepare`` refuses a model whose
``hf_device_map`` has more than one entry in any distributed mode, and every rank would spread its
copy over all GPUs. "Fits" means the loaded weights take at most :data:`USABLE_FRACTION` of a
device's memory; the rest is for activations, the generation KV cache, LoRA state and workspaces.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from .errors import UserError

GiB = 1024**3
USABLE_FRACTION = 0.85
"""Share of one device's memory the loaded weights may take (the rest: activations, KV cache, optimiser)."""


class PlacementError(UserError):
    """The model cannot be placed on the visible devices as launched; the message says what would work."""


@dataclass(frozen=True)
class Placement:
    """``device_map`` for ``from_pretrained`` (None: plain CPU load) and a one-line reason for the log."""

    device_map: str | dict | None
    reason: str

    @property
    def device(self) -> str:
        """Where the first weights live: ``cpu``, ``cuda:<i>`` or ``cuda (auto)``."""
        if self.device_map is None:
            return "cpu"
        if self.device_map == "auto":
            return "cuda (auto)"
        return f"cuda:{self.device_map['']}"


def choose_placement(*, world_size: int, local_rank: int, cuda_devices: int, device_bytes: int | None,
                     model_bytes: int | None, model: str = "the model") -> Placement:
    """The placement for one process (see the module table); :class:`PlacementError` when nothing works.

    ``device_bytes``: memory of one visible GPU; ``model_bytes``: the loaded weights (None: unknown,
    taken to fit).
    """
    if cuda_devices < 1:
        return Placement(None, "no CUDA device: CPU" + (f" (rank {local_rank} of {world_size}, gloo)"
                                                        if world_size > 1 else ""))
    fits_one = model_bytes is None or device_bytes is None or model_bytes <= USABLE_FRACTION * device_bytes
    size = "" if model_bytes is None or device_bytes is None else (
        f"{model_bytes / GiB:.1f} GiB of weights, {device_bytes / GiB:.1f} GiB per GPU")
    if world_size > 1:
        if local_rank >= cuda_devices and cuda_devices != 1:
            raise PlacementError(f"rank {local_rank} of {world_size} sees only {cuda_devices} GPUs: launch at most "
                                 f"one process per GPU (accelerate launch --num_processes {cuda_devices})")
        if not fits_one:
            raise PlacementError(f"{model} does not fit one GPU ({size}), and each of the {world_size} ranks holds "
                                 "a whole copy: run one process over several GPUs (configs/accelerate/"
                                 "lora-72b-device-map.yaml), or load 4-bit (update=qlora)")
        index = local_rank if cuda_devices > 1 else 0
        return Placement({"": index}, f"rank {local_rank} of {world_size} on its own GPU cuda:{index}")
    if fits_one:
        return Placement({"": 0}, "one process on one GPU" + (f" ({size})" if size else ""))
    total = cuda_devices * device_bytes
    if cuda_devices > 1 and model_bytes <= USABLE_FRACTION * total:
        return Placement("auto", f"one process, layers spread over {cuda_devices} GPUs ({size})")
    more = "several GPUs (one process, device_map auto)" if cuda_devices == 1 else "more GPUs"
    raise PlacementError(f"{model} does not fit the visible GPU memory ({size}, {cuda_devices} GPU"
                         f"{'s' if cuda_devices > 1 else ''}; at most {USABLE_FRACTION:.0%} may hold weights): use "
                         f"{more}, a smaller model, or 4-bit weights (update=qlora)")


def placement_for(model_bytes: int | None, model: str = "the model") -> Placement:
    """:func:`choose_placement` for this process: the launcher's ``WORLD_SIZE``/``LOCAL_RANK`` and CUDA's devices."""
    import torch

    cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device_bytes = torch.cuda.get_device_properties(0).total_memory if cuda_devices else None
    return choose_placement(world_size=int(os.environ.get("WORLD_SIZE", "1")),
                            local_rank=int(os.environ.get("LOCAL_RANK", "0")), cuda_devices=cuda_devices,
                            device_bytes=device_bytes, model_bytes=model_bytes, model=model)


def loaded_weight_bytes(model_id: str, dtype_bytes: int, load_4bit: bool) -> int | None:
    """The loaded weights' bytes from the model's shapes: ``random:*`` and hub presets from the shapes the kit
    ships, a local folder or a cached hub model from its ``config.json``; None when the shapes are unknown."""
    from . import memory

    shapes = None
    if model_id.startswith("random:"):
        from .random_presets import parse

        preset, layers = parse(model_id)
        shapes = memory.PUBLIC[preset]
        if layers is not None:
            shapes = dataclasses.replace(shapes, layers=min(layers, shapes.layers),
                                         vision_depth=min(layers, shapes.vision_depth))
    else:
        try:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(model_id)
            shapes = memory.shapes_of(config)
        except Exception:  # noqa: BLE001 - not cached, another architecture: the size is unknown
            return None
    return memory.weight_bytes(shapes, dtype_bytes, load_4bit)
