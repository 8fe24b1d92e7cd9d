"""The EvoLMM self-evolution loop (paper §3, Alg. 1; official ``src/train.py``), read top to bottom.

One step: next image → Proposer question → N Solver answers → rewards → Solver update, and every
k-th step a Proposer update. With ``images_per_step`` B > 1 a step takes B images, the Solver answers
all B×N in one generate and one update covers them all. Each step appends one JSON line per image to
``output_dir/log.jsonl`` (with ``image_index`` when B > 1); every
``save_every`` steps (and at the end of :meth:`EvoLMMTrainer.train`) a checkpoint is written.
Under ``accelerate launch`` each process takes a different image; the engine (DDP, FSDP) averages gradients.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .config import EvoLMMConfig
from .images import ImagePool, load_image
from .distributed import Distributed
from .errors import UserError
from .policy import RoleUpdater
from .rewards import config_settings, pre_answer_word_count, score_group
from .rollout import (Generation, Proposal, SolverSamples, effective_generation_settings, propose_questions, sample_answer_groups,
                      sample_answers)
from .signals import SignalCheck

log = logging.getLogger("evolmm")


class RunFolderError(UserError, FileExistsError):
    """The run folder already holds checkpoints and resuming was not asked for."""


class EvoLMMTrainer:
    """Self-evolution of one backbone's Solver and Proposer adapters."""

    def __init__(self, backbone, config: EvoLMMConfig, pool: ImagePool | None = None,
                 output_dir: str | Path | None = None, dist: Distributed | None = None) -> None:
        self.backbone, self.config = backbone, config
        scan = "official" if config.recipe == "official" else "recursive"
        self.pool = pool if pool is not None else ImagePool(config.data_dir, config.seed, scan=scan)
        self.output_dir = Path(output_dir or config.output_dir)
        self.dist = dist or Distributed()
        if self.dist.enabled:  # same adapters everywhere (seeded at load), different sampling per rank
            torch.manual_seed(config.seed + self.dist.rank)
        self.solver = RoleUpdater(backbone, "solver", config, self.dist)
        self.proposer = RoleUpdater(backbone, "proposer", config, self.dist)
        self._prepare_engine()
        self.global_step = 0
        self.last_saved_step = -1
        self.proposer_queue: dict | None = None  # questions drawn ahead (batched mode), see _next_question
        self.tracker = Tracker(config.report_to, self.output_dir, config) if self.is_main else None
        self.signal_check = SignalCheck(config.signal_window, config.kl_min)
        self.generation_settings = effective_generation_settings(backbone, config)
        if self.is_main:
            log.info("recipe %s, sampling both roles with %s", config.recipe,
                     ", ".join(f"{k}={v}" for k, v in self.generation_settings.items()))

    def _prepare_engine(self) -> None:
        """Hand the training forward(s) and both optimisers to the engine (several processes only)."""
        if not self.dist.enabled:
            return
        updaters = {"solver": self.solver, "proposer": self.proposer}
        prepared = self.dist.prepare(self.backbone, {r: u.optimizer for r, u in updaters.items()})
        for role, u in updaters.items():  # FSDP replaces the parameters by their shards
            u.optimizer, u.params = prepared[role], self.backbone.trainable_parameters(role)

    def _optimizers(self) -> dict:
        return {"solver": self.solver.optimizer, "proposer": self.proposer.optimizer}

    @property
    def is_main(self) -> bool:
        return self.dist.rank == 0

    # -- one step -----------------------------------------------------------------------------
    def step(self) -> dict | list[dict]:
        """Run one self-evolution step; return its log record (B = ``images_per_step`` > 1: one per image)."""
        cfg, t = self.config, {}
        self.global_step += 1
        step = self.global_step
        n_img = cfg.images_per_step

        t0 = time.perf_counter()
        drawn = [self._next_question() for _ in range(n_img)]  # (image, path, proposal, prop_gen, prop_row)
        t["propose"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        groups = self._solve([d[0] for d in drawn], [d[2].question for d in drawn])
        t["solve"] = time.perf_counter() - t0

        settings = config_settings(cfg)  # each group's answers were parsed once, when sampled
        scores = [score_group(g.normalized, [pre_answer_word_count(c) for c in g.completions], **settings)
                  for g in groups]

        t0 = time.perf_counter()  # one update over all B×N answers; b and β chain over them in order
        sol = self.solver.update(groups[0].generation, [r for sc in scores for r in sc.solver_rewards(cfg.reward)],
                                 group_size=cfg.num_solver_samples)
        t["update_solver"] = time.perf_counter() - t0

        t0 = time.perf_counter()  # the Proposer's B questions all come from the same generate
        prop_gen = drawn[0][3]
        prop = self.proposer.update(prop_gen, [sc.proposer_reward for sc in scores], [d[4] for d in drawn],
                                    group_size=1) if step % cfg.proposer_update_freq == 0 else None
        t["update_proposer"] = time.perf_counter() - t0

        records = []
        for i, ((image, path, proposal, _, prop_row), samples, sc) in enumerate(zip(drawn, groups, scores)):
            r_cont, r_disc = list(sc.continuous), list(sc.discrete)
            mine = slice(i * cfg.num_solver_samples, (i + 1) * cfg.num_solver_samples)
            record = {
                "step": step, "image": str(path), "question": proposal.question, "proposer_raw": proposal.raw,
                "solver_completions": samples.completions, "solver_answers": samples.answers,
                "solver_answers_normalized": samples.normalized, "majority_answer": sc.majority,
                "majority_fraction": sc.agreement, "entropy": sc.entropy,
                "solver_rewards_continuous": r_cont, "solver_rewards_discrete": r_disc,
                "solver_reward_continuous": sum(r_cont) / len(r_cont),
                "solver_reward_discrete": sum(r_disc) / len(r_disc),
                "solver_advantages": sol.advantages[mine], "proposer_reward": sc.proposer_reward,
                "proposer_updated": prop is not None,
                "baseline_solver": self.solver.baseline, "baseline_proposer": self.proposer.baseline,
                "beta_solver": self.solver.beta, "beta_proposer": self.proposer.beta,
                "loss_solver": sol.loss, "pg_loss_solver": sol.pg_loss, "kl_loss_solver": sol.kl_loss,
                "kl_solver": sol.kl, "nll_solver": sol.nll, "grad_norm_solver": sol.grad_norm,
                "loss_proposer": prop.loss if prop else None, "kl_proposer": prop.kl if prop else None,
                "grad_norm_proposer": prop.grad_norm if prop else None,
                "skipped_updates": sol.skipped + (prop.skipped if prop else 0),
                "generated_tokens": len(prop_gen.completion_ids[prop_row])
                + sum(len(samples.generation.completion_ids[r]) for r in range(len(samples.generation))[mine]),
                "pool_position": self.pool.position, "pool_skipped": len(self.pool.skipped),
                "pool_skipped_by_reason": self.pool.skipped_by_reason(),
                **{f"seconds_{k}": v for k, v in t.items()}, "seconds_step": sum(t.values()),
            }
            if n_img > 1:  # the update's and the timing fields are the step's, repeated in each image's line
                record["image_index"] = i
            if self.dist.enabled:
                record["images_all_ranks"] = self.dist.gather_objects(str(path))
            records.append(record)
        no_signal = self.signal_check.observe(step, records)
        if no_signal:
            records[-1]["no_signal"] = no_signal
            if self.is_main:
                for cause in no_signal:
                    log.warning("step %d: the reward carries no signal: %s", step, cause)
        if records[0]["skipped_updates"]:
            log.warning("step %d: non-finite loss, %d update(s) skipped", step, records[0]["skipped_updates"])
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with open(self.output_dir / "log.jsonl", "a") as f:
                f.writelines(json.dumps(record) + "\n" for record in records)
            for record in records:
                self.tracker.log(record, step)
        if cfg.save_every and step % cfg.save_every == 0:
            self.save()
        return records[0] if n_img == 1 else records

    def _next_question(self):
        """(image, path, Proposal, proposer Generation, its row) for the step's next image.

        Sequential (official): one Proposer generate per image. Batched: the Proposer adapter only
        changes every k steps, so the questions of the B images of each step up to and including its
        next update are drawn in ONE generate from the same adapter (same distribution, one call instead of k).
        """
        if self.config.update_loop == "sequential":
            image, path = self._next_image()
            (proposal,), gen = propose_questions(self.backbone, [image], self.config)
            return image, path, proposal, gen, 0
        q = self.proposer_queue
        if q is None or q["next"] >= len(q["paths"]):
            k = self.config.proposer_update_freq
            remaining = -(-self.global_step // k) * k - self.global_step + 1
            taken = [self._next_image() for _ in range(remaining * self.config.images_per_step)]
            proposals, gen = propose_questions(self.backbone, [im for im, _ in taken], self.config)
            q = self.proposer_queue = {"paths": [str(p) for _, p in taken], "proposals": proposals, "gen": gen, "next": 0}
        j = q["next"]
        q["next"] += 1
        return q["gen"].images[j], Path(q["paths"][j]), q["proposals"][j], q["gen"], j

    def _next_image(self):
        """This rank's image: every rank consumes ``world_size`` pool entries per step, keeps its own."""
        taken = [self.pool.next() for _ in range(self.dist.world_size)]
        return taken[self.dist.rank]

    def _solve(self, images, questions: list[str]) -> list[SolverSamples]:
        """N answers per (image, question): one batched generate for all B×N, or N single generates
        (sequential, as official; one image per step)."""
        if self.config.update_loop == "batched":
            return sample_answer_groups(self.backbone, images, questions, self.config)
        (image,), (question,) = images, questions
        parts = [sample_answers(self.backbone, image, question, self.config, num_samples=1)
                 for _ in range(self.config.num_solver_samples)]
        gen = concat_generations([p.generation for p in parts])
        return [SolverSamples(question, [c for p in parts for c in p.completions], [a for p in parts for a in p.answers],
                              [n for p in parts for n in p.normalized], gen)]

    # -- the run ------------------------------------------------------------------------------
    def train(self, steps: int | None = None) -> list[dict]:
        """Run until ``steps`` (default ``config.total_steps``) steps are done in total; checkpoint at the end."""
        from tqdm.auto import tqdm

        target = steps or self.config.total_steps
        records = []
        bar = tqdm(total=target, initial=self.global_step, desc="EvoLMM", disable=not self.is_main)
        while self.global_step < target:
            out = self.step()
            step_records = out if isinstance(out, list) else [out]
            records.extend(step_records)
            rec = step_records[0]
            bar.update(1)
            bar.set_postfix(r_sol=f"{rec['solver_reward_continuous']:.2f}", H=f"{rec['entropy']:.2f}",
                            kl=f"{rec['kl_solver']:.1e}")
        bar.close()
        if self.last_saved_step != self.global_step:
            self.save()
        if self.tracker:
            self.tracker.close()
        return records

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self, rank_state: dict | None = None) -> dict:
        """Everything resume needs, as plain data; ``rank_state``: this rank's RNG and queue, if already taken."""
        rank_state = rank_state or self._rank_state()
        return {"step": self.global_step, "solver": self.solver.state_dict(), "proposer": self.proposer.state_dict(),
                "rng": rank_state["rng"], "pool": {"position": self.pool.position, "skipped": dict(self.pool.skipped)},
                "proposer_queue": rank_state["proposer_queue"], "config": self.config.to_dict()}

    def _rank_state(self) -> dict:
        """What differs between ranks: the generators and the queued Proposer questions."""
        return {"rng": ckpt.rng_state(), "proposer_queue": self._queue_state()}

    def _queue_state(self) -> dict | None:
        """The queued Proposer questions as plain data (the images are read back from their paths)."""
        q = self.proposer_queue
        if q is None:
            return None
        return {"paths": list(q["paths"]), "proposals": [[p.raw, p.question] for p in q["proposals"]],
                "gen": q["gen"].to_state(), "next": int(q["next"])}

    def _queue_from_state(self, state: dict | None) -> dict | None:
        if state is None:
            return None
        return {"paths": list(state["paths"]), "proposals": [Proposal(raw, q) for raw, q in state["proposals"]],
                "gen": Generation.from_state(state["gen"], [load_image(p) for p in state["paths"]], self.backbone.device),
                "next": int(state["next"])}

    def save(self) -> Path | None:
        """Write ``checkpoint-<step>`` (rank 0; all ranks wait for it)."""
        path = None
        # each rank samples with its own generators and queues its own questions: keep every rank's
        mine = self._rank_state()
        ranks = self.dist.gather_objects(mine)
        weights = self.dist.full_weights(self.backbone)  # FSDP: whole tensors from the shards, else None
        optimizers = self.dist.full_optimizer_states(self.backbone, self._optimizers())
        if self.is_main:
            state = self.state_dict(mine)
            if self.dist.enabled:
                state["ranks"] = ranks
            for role, opt_state in (optimizers or {}).items():
                state[role]["optimizer"] = opt_state
            path = ckpt.save_checkpoint(self.output_dir, self.global_step, self.backbone, state,
                                        self.config.max_checkpoints, weights)
        self.dist.barrier()
        self.last_saved_step = self.global_step
        return path

    def resume(self, checkpoint: str | Path | None = None) -> bool:
        """Load the newest complete checkpoint (or ``checkpoint``); False when there is none."""
        if checkpoint is None:
            for bad in ckpt.incomplete_checkpoints(self.output_dir):
                log.warning("%s is not a complete checkpoint (it needs %s and both roles' weights): not resumed "
                            "from", bad, ckpt.STATE_FILE)
        checkpoint = checkpoint or ckpt.latest_checkpoint(self.output_dir)
        if checkpoint is None:
            return False
        state = ckpt.load_state(checkpoint)
        if self.dist.sharded:  # each rank keeps its shard of the whole weights and AdamW states
            self.dist.load_sharded(self.backbone, checkpoint, self._optimizers(),
                                   {r: state[r]["optimizer"] for r in ("solver", "proposer")})
            for u in (self.solver, self.proposer):
                u.beta, u.baseline = float(state[u.role]["beta"]), float(state[u.role]["baseline"])
        else:
            ckpt.restore_weights(self.backbone, checkpoint)
            self.solver.load_state_dict(state["solver"])
            self.proposer.load_state_dict(state["proposer"])
        self.pool.position = state["pool"]["position"]
        self.pool.skipped = dict(state["pool"]["skipped"])
        self.proposer_queue = self._queue_from_state(state.get("proposer_queue"))
        self.global_step = self.last_saved_step = state["step"]
        ckpt.set_rng_state(state["rng"])
        if self.dist.enabled and len(state.get("ranks", ())) == self.dist.world_size:  # same ranks: continue each
            mine = state["ranks"][self.dist.rank]
            ckpt.set_rng_state(mine["rng"])
            self.proposer_queue = self._queue_from_state(mine["proposer_queue"])
        elif self.dist.enabled:  # another number of processes: fresh per-rank streams, no queued questions
            torch.manual_seed(self.config.seed + 1000 * self.global_step + self.dist.rank)
            self.proposer_queue = None
        _truncate_log(self.output_dir / "log.jsonl", self.global_step)
        log.info("resumed from %s (step %d)", checkpoint, self.global_step)
        return True


def concat_generations(gens: list[Generation]) -> Generation:
    """Stack single-row generations of the SAME prompt and image into one (identical prompt shapes)."""
    keys = gens[0].prompt_inputs.keys()
    inputs = {k: torch.cat([g.prompt_inputs[k] for g in gens], dim=0) for k in keys}
    return Generation([t for g in gens for t in g.texts], [c for g in gens for c in g.completion_ids], inputs,
                      [p for g in gens for p in g.prompts], [im for g in gens for im in g.images])


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written by a run killed after its last checkpoint)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in keep))


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


def train(config: EvoLMMConfig, backbone=None, resume: bool = False,
          sources: dict[str, str] | None = None) -> EvoLMMTrainer:
    """Load the backbone (unless given), resume if asked, run to ``config.total_steps``.

    ``sources``: where each field's value came from (:func:`evolmm_lib.presets.resolve_config`), recorded
    beside each value in ``output_dir/config.yaml``; inferred by comparison with the defaults when not given.
    """
    from .presets import infer_sources

    from .backbone import load_backbone

    out = Path(config.output_dir)
    if not resume and ckpt.latest_checkpoint(out) is not None:
        raise RunFolderError(f"{out} already holds checkpoints: pass resume=True (--resume) or another output_dir")
    backbone = backbone or load_backbone(config=config)
    trainer = EvoLMMTrainer(backbone, config, output_dir=out)
    if not (resume and trainer.resume()):
        (out / "log.jsonl").unlink(missing_ok=True)
    if trainer.is_main:
        config.save_yaml(out / "config.yaml", sources or infer_sources(config))
    trainer.train()
    return trainer
