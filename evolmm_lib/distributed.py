"""Several processes under ``accelerate launch``: the engine (DDP or FSDP2) owns gradient sync and sharding.

One process (no ``WORLD_SIZE``, or 1): plain PyTorch, nothing wrapped. Several: an ``Accelerator``
built from the launcher's environment (``accelerate launch --config_file configs/accelerate/….yaml``)
prepares the training forward and both roles' AdamW, so

- DDP all-reduces gradients during ``accelerator.backward``. Each backward trains ONE role while
  the other role's adapter (or model) sits unused, so the DDP wrapper is built with
  ``find_unused_parameters=True``: DDP then marks the idle adapter ready instead of waiting for
  gradients that never come. The alternative, one DDP wrapper per role over the shared base,
  would hook the same parameters twice; the extra graph walk costs far less than a VLM forward.
- FSDP2 shards parameters, gradients and AdamW state; its hooks gather a layer's weights for the
  forward and reduce-scatter its gradients in the backward.

Every optimiser step follows exactly one backward (the batched update sums its N losses), so there
is no gradient accumulation to keep out of sync (``no_sync``/``accumulate`` are not needed).

Only what the paper defines across ranks is gathered by hand: scalars (rewards, KL values) for the
sequential b/β chain, and the image paths for the log.
"""

from __future__ import annotations

import os

import torch

from .logprobs import PolicyForward


def make_accelerator():
    """An ``Accelerator`` from the launcher's environment; DDP told that one role's weights idle per backward."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, DistributedType

    accelerator = Accelerator(kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        raise RuntimeError("DeepSpeed drives one optimiser per model; EvoLMM trains two roles on one model: "
                           "use an FSDP config (configs/accelerate/) to shard")
    return accelerator


class Distributed:
    """This process's place in the run, the engine's backward/clip, and the few collectives the paper needs."""

    def __init__(self, accelerator=None) -> None:
        if accelerator is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            accelerator = make_accelerator()
        self.accelerator = accelerator
        self.world_size = accelerator.num_processes if accelerator else 1
        self.rank = accelerator.process_index if accelerator else 0
        self.sharded = False
        """FSDP prepared the weights: parameters, gradients and optimiser state are split over the ranks."""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def device(self) -> torch.device:
        """Where collective tensors live: the rank's GPU under NCCL, else the CPU (gloo)."""
        if self.enabled and torch.distributed.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    # -- the engine ----------------------------------------------------------------------------
    def prepare(self, backbone, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, torch.optim.Optimizer]:
        """Wrap the training forward(s) and the roles' optimisers; sets ``backbone.forwards``.

        LoRA: one forward over the shared model, prepared with both optimisers. ``full``: each
        role's copy with its own optimiser; the frozen reference copy (the loaded base) stays whole
        on every rank, as π_ref's output head is used outside any wrapper's forward.
        Returns the prepared optimisers (same keys). One process: nothing is wrapped.
        """
        if self.accelerator is not None:
            from accelerate.utils import DistributedType

            self.sharded = self.accelerator.distributed_type == DistributedType.FSDP
        if backbone.is_lora:
            forward = PolicyForward(backbone, backbone.model)
            if self.accelerator is not None:
                forward, *opts = self.accelerator.prepare(forward, *optimizers.values())
                optimizers = dict(zip(optimizers, opts))
            backbone.forwards = {role: forward for role in optimizers}
        else:
            backbone.forwards = {}
            for role, opt in optimizers.items():
                forward = PolicyForward(backbone, backbone.role_models[role])
                if self.accelerator is not None:
                    forward, optimizers[role] = self.accelerator.prepare(forward, opt)
                backbone.forwards[role] = forward
        if self.sharded:  # generate() and the reference pass bypass the wrapper: they gather its top level
            backbone.sharded_roots = dict(backbone.forwards)
            if backbone.is_lora:
                backbone.sharded_roots[None] = forward
        return optimizers

    def backward(self, loss: torch.Tensor) -> None:
        if self.accelerator is None:
            loss.backward()
        else:
            self.accelerator.backward(loss)

    def clip_grad_norm_(self, params: list[torch.nn.Parameter], max_norm: float) -> float:
        """Clip the (all-reduced or sharded) gradients of ``params`` to ``max_norm``; the norm before."""
        if self.accelerator is None:
            return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        norm = self.accelerator.clip_grad_norm_(params, max_norm)
        return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)

    # -- collectives of scalars and objects ---------------------------------------------------
    def gather(self, values: list[float]) -> list[float]:
        """Every rank's ``values``, concatenated in rank order (same length on every rank)."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        out = [torch.zeros_like(t) for _ in range(self.world_size)]
        torch.distributed.all_gather(out, t)
        return torch.cat(out).tolist()

    def gather_objects(self, obj) -> list:
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def any(self, flag: bool) -> bool:
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.enabled:
            self.accelerator.wait_for_everyone()

    # -- checkpoints of sharded runs (FSDP): whole tensors on every rank, written by rank 0 ---------
    def full_weights(self, backbone) -> dict | None:
        """The roles' whole trainable weights gathered from the shards (collective); None when unsharded.

        LoRA: {parameter name: tensor} of both adapters. ``full``: {role: {name: tensor}} of each copy.
        """
        if not self.sharded:
            return None

        def whole(module, keep) -> dict:
            return {n: _whole(p) for n, p in module.named_parameters() if keep(n)}

        if backbone.is_lora:
            return whole(backbone.model, lambda n: "lora_" in n)
        return {r: whole(m, lambda n: True) for r, m in backbone.role_models.items()}

    def full_optimizer_states(self, backbone, optimizers: dict) -> dict | None:
        """Each role's whole AdamW state, keyed by parameter name (collective); None when unsharded."""
        if not self.sharded:
            return None
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        full = StateDictOptions(full_state_dict=True, cpu_offload=False)
        return {r: get_optimizer_state_dict(backbone.forwards[r], _unwrap(opt), options=full)
                for r, opt in optimizers.items()}

    def load_sharded(self, backbone, checkpoint, optimizers: dict, states: dict) -> None:
        """Resume a sharded run: each rank keeps its shard of the checkpoint's weights and AdamW states."""
        from pathlib import Path

        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
        from torch.distributed.tensor import distribute_tensor

        root = Path(checkpoint)
        for role, opt in optimizers.items():
            saved = _saved_weights(backbone, root / role, role)
            module = backbone.model if backbone.is_lora else backbone.role_models[role]
            params = dict(module.named_parameters())
            if backbone.is_lora:
                params = {n: p for n, p in params.items() if f".{role}." in n and "lora_" in n}
            missing = [n for n in params if n not in saved]
            if missing:
                raise RuntimeError(f"{root / role}: no saved weights for {missing[:3]}")
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(distribute_tensor(saved[n].to(p.dtype), p.device_mesh, p.placements))
            set_optimizer_state_dict(backbone.forwards[role], _unwrap(opt), states[role],
                                     options=StateDictOptions(full_state_dict=True))


def _saved_weights(backbone, folder, role: str) -> dict[str, torch.Tensor]:
    """A checkpoint's role folder as {parameter name in the live model: tensor}."""
    if backbone.is_lora:
        from peft.utils import load_peft_weights

        weights = load_peft_weights(str(folder), device="cpu")  # names without the adapter's
        return {k.replace(".lora_A.", f".lora_A.{role}.").replace(".lora_B.", f".lora_B.{role}."): v
                for k, v in weights.items()}
    from transformers import AutoModelForImageTextToText  # full: save_pretrained may rename keys on disk

    saved = AutoModelForImageTextToText.from_pretrained(folder, dtype=next(backbone.model.parameters()).dtype)
    return {n: p.detach() for n, p in saved.named_parameters()}


def _whole(p: torch.Tensor) -> torch.Tensor:
    """A sharded parameter's whole value as a plain CPU tensor (collective)."""
    t = p.full_tensor()
    if hasattr(t, "wait"):  # an in-flight collective's result (AsyncCollectiveTensor): its plain tensor
        t = t.wait()
    return t.detach().cpu().clone()


def _unwrap(optimizer):
    return getattr(optimizer, "optimizer", optimizer)
