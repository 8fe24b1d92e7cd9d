"""The miniature study: from one warm start, self-evolve with the kit's trainer under several arms.

Arms (:mod:`.arms`): ``continuous`` (EvoLMM's p(a)^γ reward), ``discrete`` (majority reward),
``oracle`` (the world's questions instead of the Proposer's), ``official`` (the official script's recipe),
``none`` (no self-evolution: the warm start itself). Each trained arm runs :class:`evolmm_lib.trainer.EvoLMMTrainer`
on the world's unlabelled pool for ``steps`` steps per seed; the Solver is scored on the labelled
validation split every ``eval_every`` steps and on the held-out test split before and after.
Hyperparameters (``rl``) are chosen on validation only. :func:`run_study` writes ``results.json``
and the plots into ``output_dir``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import EvoLMMConfig
from .arms import ARMS, arm_config, make_trainer
from .diagnostics import own_answer, phases, run_diagnostics
from .metrics import evaluate, without_items
from .warmstart import WarmStartRecipe, ensure_warmstart, warmstart_info
from .world import World, check_pool_disjoint, make_world, parse_world_question

DEFAULT_ARMS = ("continuous", "oracle", "none")
"""The default study (under 20 CPU-minutes for 3 seeds on 2 cores); `discrete` runs with `--arms`."""

DEFAULT_RL = {
    "update": "full", "lr": 5e-5, "kl_coef": 0.05, "kl_max": 1.0, "kl_target": 0.02,
    "num_solver_samples": 5, "max_new_tokens_solver": 10, "max_new_tokens_proposer": 20,
    "proposer_update_freq": 5, "advantage": "ema", "save_every": 0,
}
"""Config overrides of the self-evolution, chosen on the validation split with :data:`DEFAULT_WARMSTART`
(README, "Miniature reproduction on CPU": lr 1e-5 hardly moves the spread warm start, 1e-4 is in the
table there; β is clipped at kl_max, the official 1e2 runs away)."""

DEFAULT_WARMSTART = {"logit_spread": 1.5}
"""The SFT warm start with its logits divided by 1.5 (same greedy answer, samples spread): the setting,
chosen on validation, where the Solver's mode-seeking update has a majority to find. ``logit_spread=1`` is
the plain SFT warm start (the study's default before; its results are in the README too)."""


@dataclass
class StudySettings:
    """What one study runs. The CI setting is ``StudySettings(seeds=[0], steps=40, ...)``."""

    variant: str = "direct"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    arms: list[str] = field(default_factory=lambda: list(DEFAULT_ARMS))
    steps: int = 200
    eval_every: int = 100
    world_seed: int = 0
    n_validation: int = 200
    n_test: int = 500
    n_pool: int = 1000
    warmstart: dict = field(default_factory=lambda: dict(DEFAULT_WARMSTART))
    """:class:`WarmStartRecipe` fields on top of the kit's default recipe."""
    rl: dict = field(default_factory=lambda: dict(DEFAULT_RL))
    eval_samples: int = 5

    def __post_init__(self) -> None:
        if self.variant == "reasoning" and self.rl.get("max_new_tokens_solver", 10) <= 10:
            self.rl = {**self.rl, "max_new_tokens_solver": 64}  # "red square, blue circle, ... <answer>2</answer>"

    def recipe(self) -> WarmStartRecipe:
        return WarmStartRecipe(**{"variant": self.variant, "world_seed": self.world_seed, **self.warmstart})

    def max_tokens(self) -> int:
        return self.rl.get("max_new_tokens_solver", 10)


def ci_settings(**overrides) -> StudySettings:
    """The reduced size notebook 06 runs in CI: 1 seed, 40 steps, 200 test / 100 validation items, and the
    default arms plus ``official``."""
    return StudySettings(**{"seeds": [0], "steps": 40, "eval_every": 20, "n_test": 200, "n_validation": 100,
                            "arms": ["continuous", "oracle", "official", "none"], **overrides})


def _clock() -> tuple[float, float]:
    return time.time(), time.process_time()


def _since(t: tuple[float, float]) -> dict:
    return {"wall_s": round(time.time() - t[0], 1), "cpu_s": round(time.process_time() - t[1], 1)}


def _eval(backbone, items, settings: StudySettings, seed: int) -> dict:
    return evaluate(backbone, items, num_samples=settings.eval_samples, max_new_tokens=settings.max_tokens(),
                    seed=seed)


def _template(question: str) -> str:
    f = parse_world_question(question)
    if f is None:
        return "other"
    colour, shape = f
    return " ".join(x for x in (colour or "any-colour", shape or "any-shape"))


def run_arm(warm_path: Path, world: World, pool_dir: Path, arm: str, seed: int, settings: StudySettings,
            run_dir: Path) -> dict:
    """Self-evolve one arm from the warm start; validation curve, step logs and the trained backbone."""
    from ..backbone import load_backbone
    from ..images import ImagePool

    cfg = EvoLMMConfig(model=str(warm_path), data_dir=str(pool_dir), output_dir=str(run_dir), seed=seed,
                       total_steps=settings.steps, **arm_config(ARMS[arm], settings.rl, settings.steps))
    torch.manual_seed(seed)
    backbone = load_backbone(config=cfg)
    trainer = make_trainer(ARMS[arm], backbone, cfg, ImagePool(str(pool_dir), seed), run_dir, world)
    t = _clock()
    curve, logs = [], []
    for step in range(1, settings.steps + 1):
        logs.extend(trainer.step())  # B = 1: one record per step
        if step % settings.eval_every == 0 or step == settings.steps:
            m = without_items(_eval(backbone, world.validation, settings, seed=1000 + seed))
            curve.append({"step": step, **m})
            print(f"[miniature] {arm} seed {seed} step {step}: val sampled {m['sampled_accuracy']:.3f} "
                  f"greedy {m.get('greedy_accuracy', float('nan')):.3f} const {m['constant_answer_rate']:.2f}",
                  flush=True)
    return {"backbone": backbone, "curve": curve, "logs": logs, "time": _since(t)}


def own_question_accuracy(logs: list[dict], world: World) -> dict:
    """How the Solver does on the questions it trains on: the Proposer's, about pool images.

    Only a synthetic world can say this: the exact answer of every Proposer question is known. Returns
    the share of world questions, their true-answer rates, and the Solver's sampled and majority
    accuracy on them (labels used for this report only, never for training).
    """
    truth, sampled, majority = [], [], []
    for rec in logs:
        t, share = own_answer(rec, world)
        if t is None:
            continue
        truth.append(t)
        sampled.append(share)
        majority.append(float(rec["majority_answer"] == t))
    n = len(truth)
    return {"world_question_rate": n / len(logs) if logs else float("nan"),
            "true_answer_rates": {a: c / n for a, c in sorted(Counter(truth).items())} if n else {},
            "sampled_accuracy": _mean(sampled), "majority_accuracy": _mean(majority)}


def _summarise_logs(logs: list[dict], world: World) -> dict:
    """First vs last quarter of a run: answer entropy, Proposer question templates, own-question accuracy."""
    out = {}
    for name, part in phases(logs).items():
        out[name] = {"entropy": [rec["entropy"] for rec in part],
                     "questions": dict(Counter(_template(rec["question"]) for rec in part)),
                     "own_questions": own_question_accuracy(part, world)}
    return out


def _scalar_logs(logs: list[dict]) -> list[dict]:
    return [{k: v for k, v in l.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
            for l in logs]


def run_study(settings: StudySettings, output_dir: str | Path) -> dict:
    """Run every arm × seed; write ``results.json`` and the plots into ``output_dir``."""
    from ..backbone import load_backbone

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_all = _clock()
    world = make_world(settings.world_seed, n_validation=settings.n_validation, n_test=settings.n_test,
                       n_pool=settings.n_pool)
    pool_dir = world.write_pool(out / "pool")
    disjoint = check_pool_disjoint(world, pool_dir)
    if disjoint["overlap"]:
        raise RuntimeError(f"{len(disjoint['overlap'])} test images are in the pool")
    t = _clock()
    warm_path = ensure_warmstart(settings.recipe())
    warm_time = _since(t)
    results: dict = {"settings": dataclasses.asdict(settings), "world": world.summary(),
                     "pool_check": {**disjoint, "overlap": len(disjoint["overlap"])},
                     "warmstart": {k: v for k, v in warmstart_info(warm_path).items() if k != "losses"},
                     "warmstart_time_this_run": warm_time, "arms": {}}
    warm = load_backbone(config=EvoLMMConfig(model=str(warm_path), update="full"))
    before, before_val = {}, {}
    for seed in settings.seeds:
        before[seed] = without_items(_eval(warm, world.test, settings, seed=seed))
        before_val[seed] = without_items(_eval(warm, world.validation, settings, seed=1000 + seed))
    for arm in settings.arms:
        rows = {"seeds": list(settings.seeds), "before": [], "after": [], "before_metrics": [], "after_metrics": [],
                "curves": [], "dynamics": [], "diagnostics": [], "time": [], "logs": []}
        for seed in settings.seeds:
            if not ARMS[arm].trained:
                after = without_items(_eval(warm, world.test, settings, seed=2000 + seed))
                curve = [{"step": 0, **before_val[seed]}, {"step": settings.steps, **before_val[seed]}]
                dyn, diag, timing, logs = {}, {}, {"wall_s": 0.0, "cpu_s": 0.0}, []
            else:
                run = run_arm(warm_path, world, pool_dir, arm, seed, settings, out / "runs" / f"{arm}-{seed}")
                after = without_items(_eval(run["backbone"], world.test, settings, seed=2000 + seed))
                curve = [{"step": 0, **before_val[seed]}] + run["curve"]
                dyn, diag = _summarise_logs(run["logs"], world), run_diagnostics(run["logs"], world)
                timing, logs = run["time"], _scalar_logs(run["logs"])
                del run
            rows["before"].append(before[seed]["sampled_accuracy"])
            rows["after"].append(after["sampled_accuracy"])
            rows["before_metrics"].append(before[seed])
            rows["after_metrics"].append(after)
            rows["curves"].append(curve)
            rows["dynamics"].append(dyn)
            rows["diagnostics"].append(diag)
            rows["time"].append(timing)
            rows["logs"].append(logs)
        results["arms"][arm] = rows
    results["targets"] = targets(results)
    results["time"] = _since(t_all)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    from .plots import plot_all

    results["plots"] = [str(p) for p in plot_all(results, out)]
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return results


def merge_results(parts: list[dict], output_dir: str | Path) -> dict:
    """Join studies of the same settings run on disjoint seeds or disjoint arms (e.g. in parallel
    processes) into one ``results.json`` + plots; each arm keeps the seeds it was run on."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged = json.loads(json.dumps(parts[0]))
    merged["arms"] = {}
    for p in parts:
        for arm, rows in p["arms"].items():
            rows = {"seeds": list(p["settings"]["seeds"]), **rows}
            into = merged["arms"].setdefault(arm, {k: [] for k in rows})
            for key in set(into) | set(rows):
                into.setdefault(key, []).extend(rows.get(key, []))
    merged["settings"]["seeds"] = sorted({s for r in merged["arms"].values() for s in r["seeds"]})
    merged["settings"]["arms"] = list(merged["arms"])
    merged["time"] = {k: round(sum(p["time"][k] for p in parts), 1) for k in ("wall_s", "cpu_s")}
    merged["time"]["note"] = f"summed over {len(parts)} processes"
    merged["targets"] = targets(merged)
    from .plots import plot_all

    merged["plots"] = [str(p) for p in plot_all(merged, out)]
    (out / "results.json").write_text(json.dumps(merged, indent=1))
    return merged


def slim(results: dict) -> dict:
    """``results`` without the per-step scalar logs (the shipped copy: table, curves, diagnostics)."""
    out = json.loads(json.dumps(results))
    for r in out["arms"].values():
        r.pop("logs", None)
    out.pop("plots", None)
    return out


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def _seeds(results: dict, arm: str) -> list[int]:
    return results["arms"][arm].get("seeds", results["settings"]["seeds"])


def seed_rows(results: dict) -> list[dict]:
    """One row per arm × seed: held-out sampled accuracy before/after, greedy, agreement, constant-answer rate."""
    return [{"arm": arm, "seed": seed, "before": b, "after": a, "greedy": m.get("greedy_accuracy"),
             "agreement": m["agreement"], "constant_rate": m["constant_answer_rate"]}
            for arm, r in results["arms"].items()
            for seed, b, a, m in zip(_seeds(results, arm), r["before"], r["after"], r["after_metrics"])]


def diagnostic_rows(results: dict) -> list[dict]:
    """One row per trained arm × seed × phase (early/late): the update-push shares and own-question accuracy."""
    rows = []
    for arm, r in results["arms"].items():
        for seed, diag, dyn in zip(_seeds(results, arm), r.get("diagnostics", []), r["dynamics"]):
            if not diag:
                continue
            for phase in ("early", "late"):
                sh = diag["shares"][phase]
                rows.append({"arm": arm, "seed": seed, "phase": phase,
                             **{k: sh[k] for k in ("toward_own_majority", "toward_global_elsewhere",
                                                   "toward_truth", "majority_is_true")},
                             "own_sampled_accuracy": dyn[phase]["own_questions"]["sampled_accuracy"],
                             "global_answer": diag["global_answer"]})
    return rows


def markdown_table(results: dict) -> str:
    """The README's table: held-out test, means over seeds, and the worst seed's constant-answer rate."""
    lines = ["| arm | sampled before → after | majority-of-5 | greedy | agreement | const (max) |",
             "|---|---|---|---|---|---|"]
    limit = results["targets"]["collapse_limit"] if "targets" in results else targets(results)["collapse_limit"]
    for row in table(results):
        const = f"{row['constant_rate_max']:.3f}"
        lines.append(f"| {row['arm']} | {row['sampled_before']:.3f} → {row['sampled_after']:.3f} | "
                     f"{row['majority_after']:.3f} | {row['greedy_after']:.3f} | {row['agreement_after']:.3f} | "
                     f"{'**' + const + '**' if row['constant_rate_max'] > limit else const} |")
    return "\n".join(lines)


def table(results: dict) -> list[dict]:
    """One row per arm: means over seeds of the held-out test metrics after self-evolution."""
    rows = []
    for arm, r in results["arms"].items():
        after = r["after_metrics"]
        rows.append({
            "arm": arm, "seeds": len(after),
            "sampled_before": _mean(r["before"]), "sampled_after": _mean(r["after"]),
            "majority_after": _mean(m["majority_accuracy"] for m in after),
            "greedy_after": _mean(m.get("greedy_accuracy", float("nan")) for m in after),
            "agreement_after": _mean(m["agreement"] for m in after),
            "constant_rate_max": max(m["constant_answer_rate"] for m in after),
            "own_questions_sampled_early": _mean(d["early"]["own_questions"]["sampled_accuracy"]
                                                 for d in r["dynamics"] if d),
            "own_questions_sampled_late": _mean(d["late"]["own_questions"]["sampled_accuracy"]
                                                for d in r["dynamics"] if d),
        })
    return rows


def targets(results: dict) -> dict:
    """The study's targets, measured: each trained arm ≥ none + 5 points sampled with no seed collapsed
    (``<arm>_target_met``; ``sampled_target_met`` is continuous's), and greedy / continuous − discrete gaps."""
    arms = {row["arm"]: row for row in table(results)}
    limit = results["world"]["test_most_frequent_answer_rate"] + 0.05
    out = {"collapse_limit": limit}
    collapsed = {a: sum(m["constant_answer_rate"] > limit for m in r["after_metrics"])
                 for a, r in results["arms"].items()}
    out["collapsed_seeds"] = collapsed
    if "none" in arms:
        for arm in arms:
            if arm == "none":
                continue
            gain = arms[arm]["sampled_after"] - arms["none"]["sampled_after"]
            out[f"{arm}_minus_none_sampled"] = gain
            out[f"{arm}_minus_none_greedy"] = arms[arm]["greedy_after"] - arms["none"]["greedy_after"]
            out[f"{arm}_target_met"] = gain >= 0.05 and collapsed[arm] == 0
        if "continuous" in arms:
            out["sampled_target_met"] = out["continuous_target_met"]
    if "continuous" in arms and "discrete" in arms:
        out["continuous_minus_discrete_sampled"] = arms["continuous"]["sampled_after"] - arms["discrete"]["sampled_after"]
    return out
