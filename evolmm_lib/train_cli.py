"""``python -m evolmm_lib train --model tiny --steps 6 --output-dir DIR [--config FILE] [--FIELD VALUE ...]
[--set k=v ...] [--resume]``: every config field is a flag (``--lr 1e-5``, ``--freeze-vision false``), made from
the field's metadata; ``--help`` lists them with their help and source. Precedence: defaults < --config <
--set < field flags."""

from __future__ import annotations

import argparse
import sys

from .config import EvoLMMConfig, add_config_flags, flag_values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, help="total training steps (the same as --total-steps)")
    p.add_argument("--config", help="YAML file of config fields")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="config override (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output-dir")
    add_config_flags(p)


def config_from_args(args: argparse.Namespace) -> EvoLMMConfig:
    cfg = EvoLMMConfig.from_yaml(args.config) if args.config else EvoLMMConfig()
    cfg = cfg.with_overrides(args.set)
    flags = flag_values(args)
    if args.steps is not None:
        flags.setdefault("total_steps", args.steps)
    return cfg.replace(**flags) if flags else cfg


def main(args: argparse.Namespace) -> int:
    """Mistakes (bad config, image pool, model, checkpoint) raise; ``python -m evolmm_lib`` prints them."""
    from .trainer import train

    trainer = train(config_from_args(args), resume=args.resume)
    if trainer.is_main:
        skipped = trainer.pool.skipped_by_reason()
        print(f"[evolmm] {trainer.global_step} steps; log {trainer.output_dir / 'log.jsonl'}"
              + (f"; skipped images: {skipped}" if skipped else ""), file=sys.stderr)
    return 0
