"""What a run reports: one log record per image of each step, and the optional experiment tracker.

:func:`step_records` builds the ``log.jsonl`` lines of one step (the fields the notebooks plot and the
tests replay); :class:`Tracker` sends their scalars to tensorboard, trackio or wandb (``report_to``).
"""

from __future__ import annotations

from pathlib import Path

from .config import EvoLMMConfig


def step_records(step: int, drawn: list, groups: list, scores: list, solver, proposer, updaters: dict, pool,
                 seconds: dict[str, float], images_all_ranks: list[list] | None = None) -> list[dict]:
    """One record per image of the step.

    ``drawn``: the step's :class:`~evolmm_lib.questions.DrawnQuestion`; ``groups``: the Solver's
    :class:`~evolmm_lib.rollout.SolverSamples` per image; ``scores``: their
    :class:`~evolmm_lib.rewards.GroupScore`; ``solver`` / ``proposer``: the updates'
    :class:`~evolmm_lib.policy.UpdateResult` (``proposer`` None when it did not run); ``updaters``: both roles'
    :class:`~evolmm_lib.policy.RoleUpdater` (b and β after the step). The update's and the timing fields are the
    step's, repeated in each image's line; ``image_index`` is added when the step took several images;
    ``images_all_ranks`` (several processes): per image, every rank's image path.
    """
    records = []
    for i, (question, samples, score) in enumerate(zip(drawn, groups, scores)):
        n = len(samples.completions)
        mine = slice(i * n, (i + 1) * n)
        r_cont, r_disc = list(score.continuous), list(score.discrete)
        record = {
            "step": step, "image": str(question.path), "question": question.proposal.question,
            "proposer_raw": question.proposal.raw,
            "solver_completions": samples.completions, "solver_answers": samples.answers,
            "solver_answers_normalized": samples.normalized, "majority_answer": score.majority,
            "majority_fraction": score.agreement, "entropy": score.entropy,
            "solver_rewards_continuous": r_cont, "solver_rewards_discrete": r_disc,
            "solver_reward_continuous": sum(r_cont) / len(r_cont),
            "solver_reward_discrete": sum(r_disc) / len(r_disc),
            "solver_advantages": solver.advantages[mine], "proposer_reward": score.proposer_reward,
            "proposer_updated": proposer is not None,
            "baseline_solver": updaters["solver"].baseline, "baseline_proposer": updaters["proposer"].baseline,
            "beta_solver": updaters["solver"].beta, "beta_proposer": updaters["proposer"].beta,
            "loss_solver": solver.loss, "pg_loss_solver": solver.pg_loss, "kl_loss_solver": solver.kl_loss,
            "kl_solver": solver.kl, "nll_solver": solver.nll, "grad_norm_solver": solver.grad_norm,
            "loss_proposer": proposer.loss if proposer else None, "kl_proposer": proposer.kl if proposer else None,
            "grad_norm_proposer": proposer.grad_norm if proposer else None,
            "skipped_updates": solver.skipped + (proposer.skipped if proposer else 0),
            "generated_tokens": len(question.generation.completion_ids[question.row])
            + sum(len(samples.generation.completion_ids[r]) for r in range(len(samples.generation))[mine]),
            "pool_position": pool.position, "pool_skipped": len(pool.skipped),
            "pool_skipped_by_reason": pool.skipped_by_reason(),
            **{f"seconds_{k}": v for k, v in seconds.items()}, "seconds_step": sum(seconds.values()),
        }
        if len(drawn) > 1:
            record["image_index"] = i
        if images_all_ranks is not None:
            record["images_all_ranks"] = images_all_ranks[i]
        records.append(record)
    return records


class Tracker:
    """Optional experiment tracker (``report_to``): none, tensorboard, trackio or wandb; scalars only."""

    def __init__(self, kind: str, output_dir: Path, config: EvoLMMConfig) -> None:
        self.kind, self.run = kind, None
        if kind == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ImportError("report_to='tensorboard' needs: pip install tensorboard") from e
            self.run = SummaryWriter(str(output_dir / "tensorboard"))
        elif kind in ("wandb", "trackio"):
            try:
                mod = __import__(kind)
            except ImportError as e:
                raise ImportError(f"report_to={kind!r} needs: pip install {kind}") from e
            self.run = mod.init(project="evolmm", config=config.to_dict())
            self.mod = mod

    def log(self, record: dict, step: int) -> None:
        if self.run is None:
            return
        scalars = {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self.kind == "tensorboard":
            for k, v in scalars.items():
                self.run.add_scalar(k, v, step)
        else:
            self.mod.log(scalars, step=step)

    def close(self) -> None:
        if self.run is not None and hasattr(self.run, "close"):
            self.run.close()
        elif self.run is not None and hasattr(self.run, "finish"):
            self.run.finish()
