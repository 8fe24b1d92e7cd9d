"""``python -m evolmm_lib train --model tiny --steps 6 --output-dir DIR [--config FILE] [--FIELD VALUE ...]
[--set k=v ...] [--resume]``: every config field is a flag (``--lr 1e-5``, ``--freeze-vision false``), made from
the field's metadata; ``--help`` lists them with their help and source. Precedence: defaults < the model's
preset (:mod:`evolmm_lib.presets`) < --config < --set < field flags. ``--print-config`` prints the effective
configuration as YAML, each value with where it came from, and exits without loading any weights."""

from __future__ import annotations

import argparse
import sys

from .config import EvoLMMConfig, add_config_flags, flag_values, parse_overrides, yaml_fields
from .presets import ResolvedConfig, resolve_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, help="total training steps (the same as --total-steps)")
    p.add_argument("--config", help="YAML file of config fields")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="config override (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output-dir")
    p.add_argument("--print-config", action="store_true",
                   help="print the effective configuration (YAML, each value's source) and exit; loads no weights")
    add_config_flags(p)


def resolved_from_args(args: argparse.Namespace) -> ResolvedConfig:
    """Defaults < model preset < ``--config`` < ``--set`` < flags, with each field's source."""
    layers = []
    if args.config:
        layers.append((f"--config {args.config}", yaml_fields(args.config)))
    if args.set:
        layers.append(("--set", parse_overrides(args.set)))
    flags = flag_values(args)
    if args.steps is not None:
        flags.setdefault("total_steps", args.steps)
    if flags:
        layers.append(("flag", flags))
    return resolve_config(*layers)


def config_from_args(args: argparse.Namespace) -> EvoLMMConfig:
    return resolved_from_args(args).config


def main(args: argparse.Namespace) -> int:
    """Mistakes (bad config, image pool, model, checkpoint) raise; ``python -m evolmm_lib`` prints them."""
    resolved = resolved_from_args(args)
    if args.print_config:
        sys.stdout.write(resolved.to_yaml())
        return 0
    from .trainer import train

    trainer = train(resolved.config, resume=args.resume, sources=resolved.sources)
    if trainer.is_main:
        skipped = trainer.pool.skipped_by_reason()
        print(f"[evolmm] {trainer.global_step} steps; log {trainer.output_dir / 'log.jsonl'}"
              + (f"; skipped images: {skipped}" if skipped else ""), file=sys.stderr)
    return 0
