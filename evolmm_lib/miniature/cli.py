"""``python -m evolmm_lib miniature --seeds 3 --output-dir DIR``: the CPU miniature reproduction study."""

from __future__ import annotations

import argparse
import json

from pathlib import Path

from ..errors import UserError
from .arms import ARMS, arm_config
from .study import DEFAULT_ARMS, DEFAULT_RL, DEFAULT_WARMSTART, StudySettings, merge_results, run_study, table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, default=3, help="number of seeds per arm (first-seed, first-seed + 1, ...)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--merge", nargs="+", metavar="DIR",
                   help="instead of running: join the results.json of studies run on disjoint seeds or arms")
    p.add_argument("--output-dir", default="runs/miniature", help="where results.json and the plots go")
    p.add_argument("--arms", nargs="+", default=list(DEFAULT_ARMS), choices=list(ARMS),
                   help="; ".join(f"{a.name}: {a.help}" for a in ARMS.values()))
    p.add_argument("--variant", default="direct", choices=("direct", "reasoning"))
    p.add_argument("--steps", type=int, default=StudySettings.steps, help="self-evolution steps per run")
    p.add_argument("--eval-every", type=int, default=StudySettings.eval_every)
    p.add_argument("--n-test", type=int, default=StudySettings.n_test)
    p.add_argument("--n-validation", type=int, default=StudySettings.n_validation)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help=f"trainer config overrides on top of {json.dumps(DEFAULT_RL)}; ARM.KEY=VALUE sets one arm's "
                        "only, e.g. official.lr=1e-4")
    p.add_argument("--warmstart", nargs="*", default=[], metavar="KEY=VALUE",
                   help=f"WarmStartRecipe overrides on top of {json.dumps(DEFAULT_WARMSTART)}, e.g. logit_spread=1 "
                        "(the plain SFT warm start) proposer_grounded=true")


def _pairs(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings → dict, values read as YAML scalars (and "3e-4", which YAML 1.1 leaves a
    string, as a number)."""
    import yaml

    out = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        value = yaml.safe_load(raw)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        out[key.strip()] = value
    return out


def _check_overrides(rl: dict, warmstart: dict) -> None:
    """Unknown or invalid ``--set`` / ``--warmstart`` keys fail here, before any model is built."""
    from dataclasses import fields

    from ..config import EvoLMMConfig
    from .warmstart import WarmStartRecipe

    unknown_arms = sorted({k.split(".", 1)[0] for k in rl if "." in k} - set(ARMS))
    if unknown_arms:
        raise UserError(f"--set: unknown arm(s) {unknown_arms} in ARM.KEY=VALUE: expected one of {', '.join(ARMS)}")
    for arm in ARMS.values():
        EvoLMMConfig().replace(**arm_config(arm, rl, 1))  # ConfigError on a bad field or value
    unknown = sorted(set(warmstart) - {f.name for f in fields(WarmStartRecipe)})
    if unknown:
        raise UserError(f"--warmstart: unknown key(s) {unknown}: expected WarmStartRecipe fields")


def settings_from_args(args: argparse.Namespace) -> StudySettings:
    _check_overrides({**DEFAULT_RL, **_pairs(args.set)}, _pairs(args.warmstart))
    return StudySettings(variant=args.variant, seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
                         arms=list(args.arms), steps=args.steps, eval_every=args.eval_every, n_test=args.n_test,
                         n_validation=args.n_validation, rl={**DEFAULT_RL, **_pairs(args.set)},
                         warmstart={**DEFAULT_WARMSTART, **_pairs(args.warmstart)})


def main(args: argparse.Namespace) -> int:
    if args.merge:
        missing = [str(Path(d) / "results.json") for d in args.merge if not (Path(d) / "results.json").is_file()]
        if missing:
            raise UserError(f"--merge: no results.json in {', '.join(missing)} (run the study there first)")
        parts = [json.loads((Path(d) / "results.json").read_text()) for d in args.merge]
        results = merge_results(parts, args.output_dir)
    else:
        results = run_study(settings_from_args(args), args.output_dir)
    for row in table(results):
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    print(json.dumps(results["targets"], indent=1))
    print(f"results: {args.output_dir}/results.json ({results['time']['wall_s']} s wall, "
          f"{results['time']['cpu_s']} s CPU)")
    return 0
