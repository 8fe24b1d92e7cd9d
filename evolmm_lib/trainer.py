"""The EvoLMM self-evolution loop (paper §3, Alg. 1; official ``src/train.py``), read top to bottom.

One step: next image → Proposer question → N Solver answers → rewards → Solver update, and every
k-th step a Proposer update. With ``images_per_step`` B > 1 a step takes B images, the Solver answers
all B×N in one generate and one update covers them all. Each step appends one JSON line per image to
``output_dir/log.jsonl`` (with ``image_index`` when B > 1); every
``save_every`` steps (and at the end of :meth:`EvoLMMTrainer.train`) a checkpoint is written.
Under ``accelerate launch`` each process takes a different image; the engine (DDP, FSDP) averages gradients.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .config import EvoLMMConfig
from .images import ImagePool
from .distributed import Distributed
from .errors import UserError
from .policy import RoleUpdater
from .rewards import config_settings, score_group
from .recipes import recipe_of
from .questions import DrawnQuestion, ProposerQuestions, QuestionSource
from .rollout import Generation, SolverSamples, effective_generation_settings, sample_answer_groups, sample_answers
from .signals import SignalCheck
from .tracking import Tracker, step_records

log = logging.getLogger("evolmm")


class RunFolderError(UserError, FileExistsError):
    """The run folder already holds checkpoints and resuming was not asked for."""


class EvoLMMTrainer:
    """Self-evolution of one backbone's Solver and Proposer adapters."""

    def __init__(self, backbone, config: EvoLMMConfig, pool: ImagePool | None = None,
                 output_dir: str | Path | None = None, dist: Distributed | None = None,
                 questions: QuestionSource | None = None) -> None:
        """``questions``: where each image's question comes from (default: the Proposer, :mod:`evolmm_lib.questions`)."""
        self.backbone, self.config = backbone, config
        scan = recipe_of(config).image_scan
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
        self.questions = questions or ProposerQuestions(backbone, config)
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
    def step(self) -> list[dict]:
        """One self-evolution step (paper Alg. 1); its log records, one per image (B = ``images_per_step``)."""
        cfg, seconds = self.config, {}
        self.global_step += 1
        step = self.global_step
        # 1. draw B images and the question asked about each (the Proposer's, paper §3.1)
        with timed(seconds, "propose"):
            drawn = [self.questions.next(step, self._next_image) for _ in range(cfg.images_per_step)]
        # 2. the Solver answers each question N times
        with timed(seconds, "solve"):
            groups = self._solve(drawn)
        # 3. score each group: Solver rewards p(a)^γ with the length penalty, H, Proposer band-pass (Eqs. 3-4)
        settings = config_settings(cfg)  # each completion was read once, when sampled
        scores = [score_group(g.normalized, g.words, **settings) for g in groups]
        # 4. update the Solver on all B×N answers (b and β chain over them in order)
        with timed(seconds, "update_solver"):
            solver = self.solver.update(groups[0].generation, [r for sc in scores for r in sc.solver_rewards(cfg.reward)],
                                        group_size=cfg.num_solver_samples)
        # 5. every k-th step, update the Proposer on its B questions (all from one generate)
        with timed(seconds, "update_proposer"):
            proposer = None
            if self.questions.generated and step % cfg.proposer_update_freq == 0:
                proposer = self.proposer.update(drawn[0].generation, [sc.proposer_reward for sc in scores],
                                                [d.row for d in drawn], group_size=1)
        # 6. log one record per image
        images_all_ranks = [self.dist.gather_objects(str(d.path)) for d in drawn] if self.dist.enabled else None
        records = step_records(step, drawn, groups, scores, solver, proposer,
                               {"solver": self.solver, "proposer": self.proposer}, self.pool, seconds, images_all_ranks)
        self._report(step, records)
        # 7. checkpoint every save_every steps
        if cfg.save_every and step % cfg.save_every == 0:
            self.save()
        return records

    def _report(self, step: int, records: list[dict]) -> None:
        """Warnings (skipped updates, a reward without signal), ``log.jsonl`` and the tracker."""
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

    def _next_image(self):
        """This rank's image: every rank consumes ``world_size`` pool entries per step, keeps its own."""
        taken = [self.pool.next() for _ in range(self.dist.world_size)]
        return taken[self.dist.rank]

    def _solve(self, drawn: list[DrawnQuestion]) -> list[SolverSamples]:
        """N answers per (image, question): one batched generate for all B×N, or N single generates
        (sequential, as official; one image per step)."""
        images, questions = [d.image for d in drawn], [d.proposal.question for d in drawn]
        if self.config.update_loop == "batched":
            return sample_answer_groups(self.backbone, images, questions, self.config)
        (image,), (question,) = images, questions
        parts = [sample_answers(self.backbone, image, question, self.config, num_samples=1)
                 for _ in range(self.config.num_solver_samples)]
        gen = concat_generations([p.generation for p in parts])
        return [SolverSamples(question, [c for p in parts for c in p.completions], [a for p in parts for a in p.answers],
                              [n for p in parts for n in p.normalized], [w for p in parts for w in p.words], gen)]

    # -- the run ------------------------------------------------------------------------------
    def train(self, steps: int | None = None) -> list[dict]:
        """Run until ``steps`` (default ``config.total_steps``) steps are done in total; checkpoint at the end."""
        from tqdm.auto import tqdm

        target = steps or self.config.total_steps
        records = []
        bar = tqdm(total=target, initial=self.global_step, desc="EvoLMM", disable=not self.is_main)
        while self.global_step < target:
            step_records = self.step()
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
        return {"rng": ckpt.rng_state(), "proposer_queue": self.questions.state()}

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
        self.questions.load_state(state.get("proposer_queue"), self.backbone.device)
        self.global_step = self.last_saved_step = state["step"]
        ckpt.set_rng_state(state["rng"])
        if self.dist.enabled and len(state.get("ranks", ())) == self.dist.world_size:  # same ranks: continue each
            mine = state["ranks"][self.dist.rank]
            ckpt.set_rng_state(mine["rng"])
            self.questions.load_state(mine["proposer_queue"], self.backbone.device)
        elif self.dist.enabled:  # another number of processes: fresh per-rank streams, no queued questions
            torch.manual_seed(self.config.seed + 1000 * self.global_step + self.dist.rank)
            self.questions.load_state(None, self.backbone.device)
        if self.is_main:  # the one writer of log.jsonl; another rank reading it mid-rewrite would empty it
            _truncate_log(self.output_dir / "log.jsonl", self.global_step)
        log.info("resumed from %s (step %d)", checkpoint, self.global_step)
        return True


@contextlib.contextmanager
def timed(seconds: dict[str, float], phase: str):
    """Add the wall time of the ``with`` body to ``seconds[phase]``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        seconds[phase] = seconds.get(phase, 0.0) + time.perf_counter() - t0


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
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    os.replace(tmp, path)  # atomic: a kill mid-write leaves the old log, never a half one


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
    if not (resume and trainer.resume()) and trainer.is_main:
        (out / "log.jsonl").unlink(missing_ok=True)
    if trainer.is_main:
        config.save_yaml(out / "config.yaml", sources or infer_sources(config))
    trainer.train()
    return trainer
