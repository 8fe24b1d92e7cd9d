"""KL-regularised REINFORCE for one role (paper §3.4; official ``PolicyUpdater``).

Per completion i with reward r_i:   loss_i = A_i · NLL_i + β_i · KL_i
  NLL_i = mean over completion tokens of −log π(y_t | ·)
  KL_i  = mean over completion tokens of KL(π ‖ π_ref)_t  (full vocabulary; π_ref = adapters off, or the frozen copy)
  A_i   = r_i − b_{i−1}  (ema, paper) with b_i = m·b_{i−1} + (1−m)·r_i, or (r_i − mean r)/std r (group)
  β_i   = clip(β_{i−1}·exp(rate·(KL_{i−1} − target)/target), β_min, β_max)

``update_mode="sequential"`` is the official loop: one forward/backward/AdamW step per completion,
β and b updated after each. ``"batched"`` keeps the same b and β sequences (computed from the N
rewards and the N KL values of one forward pass) but sums the N losses into ONE forward/backward
and ONE AdamW step. ``papers/evolmm.md`` ("Where batching changes the arithmetic") says what differs.

``recipe="official"`` switches to what the official ``PolicyUpdater.step`` computes: per-sample steps,
NLL_i = the mean cross-entropy of the RE-TOKENISED decoded completion with no image in the forward
(:func:`~evolmm_lib.logprobs.retokenized_batch`), π_ref = the Solver adapter itself in train mode (its
``disable_adapter()`` call, made without ``with``, disables nothing), the Proposer's AdamW never steps
(leaving ``use_adapter("proposer")`` freezes its LoRA before ``backward``: only β and b move), and
gradients clipped per device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .config import EvoLMMConfig
from .distributed import Distributed
from .logprobs import official_nll_and_kl, retokenized_batch, teacher_forced_batch
from .recipes import recipe_of
from .rollout import Generation

GROUP_STD_EPS = 1e-4  # as TRL's GRPO

OFFICIAL_REFERENCE_ROLE = "solver"
"""The adapter the official reference forward runs with: the one active after every ``use_adapter`` exit
(its "default", the Solver), for both roles' updates."""


def adapt_beta(beta: float, kl: float, config: EvoLMMConfig) -> float:
    """β ← clip(β·exp(rate·(KL − target)/target), β_min, β_max) (official adaptive controller)."""
    exponent = config.kl_adapt_rate * (kl - config.kl_target) / config.kl_target
    beta = beta * math.exp(min(exponent, 700.0))  # exp overflows past ~709; the clip below applies anyway
    return float(min(config.kl_max, max(config.kl_min, beta)))


def ema(baseline: float, reward: float, momentum: float) -> float:
    """b ← m·b + (1 − m)·r."""
    return momentum * baseline + (1.0 - momentum) * reward


def sequential_chain(rewards: list[float], kls: list[float], baseline: float, beta: float,
                     config: EvoLMMConfig) -> tuple[list[float], list[float], float, float]:
    """The official per-sample sequence: (b used for each sample, β used for each, final b, final β)."""
    b_used, beta_used = [], []
    for r, kl in zip(rewards, kls):
        b_used.append(baseline)
        beta_used.append(beta)
        beta = adapt_beta(beta, kl, config)
        baseline = ema(baseline, r, config.baseline_momentum)
    return b_used, beta_used, baseline, beta


def group_advantages(rewards: list[float]) -> list[float]:
    """GRPO-style (r − mean)/(std + ε) over the group (unbiased std); zeros for a group of one."""
    if len(rewards) < 2:
        return [0.0] * len(rewards)
    t = torch.tensor(rewards, dtype=torch.float64)
    return ((t - t.mean()) / (t.std() + GROUP_STD_EPS)).tolist()


@dataclass
class UpdateResult:
    """What one role update did (summed over its optimiser steps where there are several)."""

    loss: float = 0.0
    pg_loss: float = 0.0
    kl_loss: float = 0.0
    kl: float = 0.0
    nll: float = 0.0
    grad_norm: float = 0.0
    advantages: list[float] = field(default_factory=list)
    optimizer_steps: int = 0
    skipped: int = 0


def clip_per_device(params: list[torch.nn.Parameter], max_norm: float) -> float:
    """Clip each device's gradients to ``max_norm`` separately (official); returns the overall norm before."""
    by_device: dict[torch.device, list[torch.nn.Parameter]] = {}
    for p in params:
        if p.grad is not None:
            by_device.setdefault(p.grad.device, []).append(p)
    norms = [float(torch.nn.utils.clip_grad_norm_(ps, max_norm)) for ps in by_device.values()]
    return math.sqrt(sum(n * n for n in norms))


class RoleUpdater:
    """REINFORCE updates of one role ("solver" or "proposer"): its AdamW, its β and its baseline b."""

    def __init__(self, backbone, role: str, config: EvoLMMConfig, dist: Distributed | None = None) -> None:
        self.backbone, self.role, self.config = backbone, role, config
        self.dist = dist or Distributed()
        self.params = backbone.trainable_parameters(role)
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.beta = float(config.kl_coef)
        self.baseline = 0.0
        self.recipe = recipe_of(config)
        self.steps_optimizer = role != "proposer" or self.recipe.proposer_trained
        """False for the official Proposer: its loss, β and b are computed, its weights never change."""

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "beta": self.beta, "baseline": self.baseline}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.beta, self.baseline = float(state["beta"]), float(state["baseline"])

    # -- update -----------------------------------------------------------------------------
    def update(self, gen: Generation, rewards: list[float], rows: list[int] | None = None,
               group_size: int | None = None) -> UpdateResult:
        """Update on the completions ``rows`` of ``gen`` (default all; row ``rows[i]`` has reward ``rewards[i]``).

        ``group_size``: consecutive rewards of one image (default all of them), for ``advantage="group"``.
        """
        rows = list(range(len(gen))) if rows is None else list(rows)
        if len(rewards) != len(rows):
            raise ValueError(f"{len(rewards)} rewards for {len(rows)} completions")
        # group advantages use this rank's N rewards of each image (one image = one group); a group
        # of one (the Proposer) has no spread, so it keeps the ema advantage
        size = group_size or len(rewards)
        group = None
        if self.config.advantage == "group" and size > 1:
            group = [a for i in range(0, len(rewards), size) for a in group_advantages(rewards[i:i + size])]
        if self.config.update_loop == "sequential":
            if self.dist.enabled:
                raise ValueError("update_mode='sequential' runs in one process; use 'batched' with several")
            result = UpdateResult()
            for i, (row, r) in enumerate(zip(rows, rewards)):
                one = self._step(gen, [row], [r], None if group is None else [group[i]])
                for k in ("loss", "pg_loss", "kl_loss", "optimizer_steps", "skipped"):
                    setattr(result, k, getattr(result, k) + getattr(one, k))
                result.kl += one.kl / len(rewards)
                result.nll += one.nll / len(rewards)
                result.grad_norm = max(result.grad_norm, one.grad_norm)
                result.advantages += one.advantages
            return result
        return self._step(gen, rows, list(rewards), group)

    def _step(self, gen: Generation, rows: list[int], rewards: list[float],
              group_adv: list[float] | None = None) -> UpdateResult:
        """One forward/backward over ``rows`` and one AdamW step (all ranks' rows; the engine averages gradients)."""
        if self.recipe.update_batch == "retokenized_text":
            batch = retokenized_batch(self.backbone, gen, rows[0])  # sequential: one row
            if batch.completion_ids.shape[1] == 0:  # empty completion: the official mean CE is NaN
                return UpdateResult(skipped=1)
        else:
            batch = teacher_forced_batch(gen, rows)
        with self.backbone.role(self.role) as model:
            was = model.training
            model.train()  # LoRA dropout, as the official update
            try:
                if self.recipe.reference == "solver_adapter":  # one process (sequential), the official NLL
                    nll, kl_row = official_nll_and_kl(self.backbone, model, batch, OFFICIAL_REFERENCE_ROLE)
                    logp = kl = None
                else:  # π_ref and π_role in one call of the (engine-wrapped) training forward
                    logp, kl = self.backbone.training_forward(self.role)(batch, self.role, self.config.kl_chunk_size)
                    n_tok = batch.completion_mask.sum(1).clamp(min=1.0)
                    nll = -logp.sum(1) / n_tok  # [rows]
                    kl_row = kl.sum(1) / n_tok  # [rows]
                rank_rows = len(rows)
                rewards_all = self.dist.gather(rewards)
                kls_all = self.dist.gather(kl_row.detach().double().tolist())
                # the official per-sample order over every rank's samples (rank 0's first)
                b_all, beta_all, b_end, beta_end = sequential_chain(rewards_all, kls_all, self.baseline, self.beta,
                                                                    self.config)
                mine = slice(self.dist.rank * rank_rows, (self.dist.rank + 1) * rank_rows)
                adv_mine = group_adv or [r - b for r, b in zip(rewards_all[mine], b_all[mine])]
                adv = torch.tensor(adv_mine, dtype=nll.dtype, device=nll.device)
                betas = torch.tensor(beta_all[mine], dtype=nll.dtype, device=nll.device)
                pg_loss = (adv * nll).sum()
                kl_loss = (betas * kl_row).sum()
                loss = pg_loss + kl_loss
                result = UpdateResult(loss.item(), pg_loss.item(), kl_loss.item(), float(sum(kls_all) / len(kls_all)),
                                      nll.mean().item(), advantages=[float(a) for a in adv_mine])
                finite = all(map(math.isfinite, list(adv_mine) + rewards_all + kls_all))
                bad = self.dist.any(not torch.isfinite(loss).item() or not finite)
                if bad:  # a NaN/inf loss: no step, β and b unchanged; the trainer logs it
                    result.skipped = 1
                    if self.dist.enabled:  # DDP expects the forward's backward: a zero one, then discarded
                        self.dist.backward((logp.nan_to_num().sum() + kl.nan_to_num().sum()) * 0.0)
                    self.optimizer.zero_grad(set_to_none=True)
                    return result
                if not self.steps_optimizer:
                    self.baseline, self.beta = b_end, beta_end
                    return result
                self.dist.backward(loss)  # DDP all-reduces / FSDP reduce-scatters the gradients here
            finally:
                model.train(was)
        if self.recipe.grad_clip == "per_device":
            result.grad_norm = clip_per_device(self.params, self.config.grad_clip)
        else:
            result.grad_norm = self.dist.clip_grad_norm_(self.params, self.config.grad_clip)
        if not math.isfinite(result.grad_norm):
            result.skipped = 1
            self.optimizer.zero_grad(set_to_none=True)
            return result
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.baseline, self.beta = b_end, beta_end
        result.optimizer_steps = 1
        return result
