"""Teacher-forced log-probabilities and full-vocabulary KL of sampled completions (paper §3.4).

The batch is ``[left-padded prompt | completion | right padding]``. Qwen2.5-VL needs the
processor's ``mm_token_type_ids`` (extended with zeros over the completion) to build its 3-D
mrope positions; without it the model silently falls back to 1-D positions and the log-probs no
longer match what ``generate`` sampled from. Position ids are never passed: the model computes them.

``recipe="official"`` builds the batch as the official ``PolicyUpdater.step`` does instead
(:func:`retokenized_batch`): the chat prompt plus the decoded completion TEXT, tokenised again by the
processor, and only ``input_ids`` and ``attention_mask`` passed to the model: no ``pixel_values``, so
the image placeholders get no visual features and positions fall back to 1-D.

Logits are produced ``chunk_size`` positions at a time from the last hidden states, under
activation checkpointing, so no more than one chunk of ``[rows, chunk, vocab]`` logits exists at
once, in the forward pass or the backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .rollout import Generation

_VISION_KEYS = ("pixel_values", "image_grid_thw")


@dataclass
class TeacherForcedBatch:
    """Model inputs for prompt + completion, and where the completion tokens are."""

    inputs: dict[str, torch.Tensor]
    completion_ids: torch.Tensor
    """[rows, T] completion token ids, right-padded with 0."""
    completion_mask: torch.Tensor
    """[rows, T] 1.0 on real completion tokens."""
    prompt_len: int


def teacher_forced_batch(gen: Generation, rows: list[int] | None = None) -> TeacherForcedBatch:
    """Inputs that replay ``gen``'s completions (all rows, or the subset ``rows``)."""
    rows = list(range(len(gen))) if rows is None else list(rows)
    p = gen.prompt_inputs
    device = p["input_ids"].device
    ids = [gen.completion_ids[r] for r in rows]
    t_max = max(1, max(len(c) for c in ids))
    comp = torch.zeros(len(rows), t_max, dtype=torch.long, device=device)
    mask = torch.zeros(len(rows), t_max, dtype=torch.float32, device=device)
    for i, c in enumerate(ids):
        comp[i, : len(c)] = torch.tensor(c, dtype=torch.long, device=device)
        mask[i, : len(c)] = 1.0
    index = torch.tensor(rows, device=device)
    inputs = {
        "input_ids": torch.cat([p["input_ids"][index], comp], dim=1),
        "attention_mask": torch.cat([p["attention_mask"][index], mask.long()], dim=1),
    }
    if "mm_token_type_ids" in p:
        inputs["mm_token_type_ids"] = torch.cat([p["mm_token_type_ids"][index], torch.zeros_like(comp)], dim=1)
    inputs.update(_select_vision(p, rows))
    return TeacherForcedBatch(inputs, comp, mask, p["input_ids"].shape[1])


def retokenized_batch(backbone, gen: Generation, row: int) -> TeacherForcedBatch:
    """Official update inputs for ``gen``'s row: processor(chat prompt + completion text, image), whose
    first len(processor(chat prompt, image)) tokens are prompt; only ``input_ids`` and ``attention_mask``
    are kept (the official forward gets nothing else, so the image never reaches the model)."""
    from .rollout import render_prompt

    prompt = render_prompt(backbone, gen.prompts[row])
    image = [gen.images[row]]
    full = backbone.processor(text=[prompt + gen.texts[row]], images=image, return_tensors="pt")
    prompt_len = backbone.processor(text=[prompt], images=image, return_tensors="pt")["input_ids"].shape[1]
    device = backbone.device
    inputs = {k: full[k].to(device) for k in ("input_ids", "attention_mask")}
    comp = inputs["input_ids"][:, prompt_len:]
    return TeacherForcedBatch(inputs, comp, torch.ones(comp.shape, dtype=torch.float32, device=device), prompt_len)


def official_nll_and_kl(backbone, model: torch.nn.Module, batch: TeacherForcedBatch,
                        reference_role: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ``PolicyUpdater.step`` arithmetic for one row, op for op: NLL = the model's own
    (HF) mean cross-entropy with the prompt masked; KL = mean over completion positions of the
    full-vocabulary KL(π‖π_ref), π_ref being ``reference_role``'s adapter run in the current (train)
    mode without grad. Returns ([1] NLL, [1] KL); gradients flow into ``model``'s active adapter."""
    labels = batch.inputs["input_ids"].clone()
    labels[:, : batch.prompt_len] = -100
    out = model(**batch.inputs, labels=labels)
    logp = F.log_softmax(out.logits, dim=-1)[:, :-1]
    with torch.no_grad(), backbone.role(reference_role) as ref:
        logp_ref = F.log_softmax(ref(**batch.inputs).logits, dim=-1)[:, :-1]
    valid = labels[:, 1:] != -100
    kl_tok = (logp.exp() * (logp - logp_ref)).sum(dim=-1)
    kl = kl_tok[valid].mean() if valid.any() else torch.zeros((), device=kl_tok.device)
    return out.loss.reshape(1), kl.reshape(1)


def _select_vision(p: dict[str, torch.Tensor], rows: list[int]) -> dict[str, torch.Tensor]:
    """pixel_values are flat patches: pick each row's slice using image_grid_thw."""
    if "pixel_values" not in p:
        return {}
    grid = p["image_grid_thw"]
    sizes = grid.prod(dim=-1).tolist()
    starts = [0]
    for s in sizes:
        starts.append(starts[-1] + s)
    pieces = [p["pixel_values"][starts[r]: starts[r + 1]] for r in rows]
    return {"pixel_values": torch.cat(pieces, dim=0), "image_grid_thw": grid[rows]}


def causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The ``...ForConditionalGeneration`` module inside a PEFT / Unsloth / DDP wrapper."""
    m = getattr(model, "module", model)
    if hasattr(m, "get_base_model"):  # PEFT forwards attribute look-ups, so unwrap explicitly
        m = m.get_base_model()
    if not hasattr(m, "lm_head"):
        raise TypeError(f"cannot find an lm_head in {type(model).__name__}")
    return m


def completion_hidden(model: torch.nn.Module, batch: TeacherForcedBatch) -> torch.Tensor:
    """Last hidden states at the positions that predict each completion token: [rows, T, H]."""
    lm = causal_lm(model)
    out = lm.model(**batch.inputs, use_cache=False)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    t = batch.completion_ids.shape[1]
    return hidden[:, batch.prompt_len - 1: batch.prompt_len - 1 + t]


@dataclass
class Reference:
    """π_ref at the completion positions: its last hidden states and its OWN output head.

    Under LoRA the head is the shared frozen one; under ``update="full"`` the policy's head is
    trainable, so π_ref's logits must come from the frozen reference copy's head, not the policy's.
    """

    hidden: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor | None


def _head(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The output head on [rows, T, hidden] as ONE 2-D matmul. ``F.linear`` on a strided 3-D slice of several
    rows takes torch's batched path, which on a CPU in bf16 copies the whole [vocab, hidden] weight per call
    (20 of a 22 s step for random:qwen2.5-vl-3b@2, torch 2.14)."""
    rows, t, d = h.shape
    return F.linear(h.reshape(rows * t, d), weight, bias).view(rows, t, -1)


def _chunk_stats(h: torch.Tensor, h_ref: torch.Tensor | None, targets: torch.Tensor, weight: torch.Tensor,
                 bias: torch.Tensor | None, ref_weight: torch.Tensor | None, ref_bias: torch.Tensor | None,
                 with_kl: bool) -> tuple[torch.Tensor, torch.Tensor]:
    # float32 on purpose under a bf16 model: a bf16 log-softmax over 152k tokens loses the KL's small terms
    logp = F.log_softmax(_head(h, weight, bias).float(), dim=-1)
    tok_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    if not with_kl:
        return tok_logp, torch.zeros_like(tok_logp)
    with torch.no_grad():
        logp_ref = F.log_softmax(_head(h_ref, ref_weight, ref_bias).float(), dim=-1)
    kl = (logp.exp() * (logp - logp_ref)).sum(-1)  # KL(π‖π_ref) over the full vocabulary
    return tok_logp, kl


def completion_logprobs_and_kl(
    model: torch.nn.Module,
    batch: TeacherForcedBatch,
    reference: Reference | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log π(y_t|·) and KL(π‖π_ref)_t over completion positions, both [rows, T].

    ``reference`` is π_ref's :func:`reference_outputs` (computed without grad); without it the KL
    is zeros. Gradients flow into ``model``'s trainable parameters.
    """
    h = completion_hidden(model, batch)
    head = causal_lm(model).lm_head
    weight, bias = head.weight, head.bias
    logps, kls = [], []
    for s in range(0, h.shape[1], chunk_size):
        sl = slice(s, s + chunk_size)
        ref = (None, None, None) if reference is None else (reference.hidden[:, sl], reference.weight, reference.bias)
        args = (h[:, sl], ref[0], batch.completion_ids[:, sl], weight, bias, ref[1], ref[2], reference is not None)
        if torch.is_grad_enabled():
            lp, kl = checkpoint(_chunk_stats, *args, use_reentrant=False)
        else:
            lp, kl = _chunk_stats(*args)
        logps.append(lp)
        kls.append(kl)
    mask = batch.completion_mask
    return torch.cat(logps, 1) * mask, torch.cat(kls, 1) * mask


@torch.no_grad()
def reference_outputs(backbone, batch: TeacherForcedBatch) -> Reference:
    """π_ref's completion hidden states and output head (adapters disabled, or the frozen copy)."""
    with backbone.role(None) as ref:
        was = ref.training
        ref.eval()
        h = completion_hidden(ref, batch)
        ref.train(was)
        head = causal_lm(ref).lm_head
    return Reference(h.detach(), head.weight.detach(), None if head.bias is None else head.bias.detach())


class PolicyForward(torch.nn.Module):
    """π_ref's and one role's per-token log π and KL as ONE module call.

    The engine only sees what runs inside its wrapper's ``forward``: DDP prepares its gradient
    reduction there, FSDP gathers the sharded weights there. So the reference pass and the role's
    pass (including the output head, used chunk by chunk) both happen inside this forward.
    """

    def __init__(self, backbone, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model  # the weights the engine wraps (the shared LoRA model, or one role's copy)
        object.__setattr__(self, "backbone", backbone)  # a plain reference, not a submodule

    def forward(self, batch: TeacherForcedBatch, role: str, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        reference = reference_outputs(self.backbone, batch)
        with self.backbone.role(role) as policy:
            return completion_logprobs_and_kl(policy, batch, reference, chunk_size)
