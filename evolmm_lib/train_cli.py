"""``python -m evolmm_lib train --model tiny --steps 6 --output-dir DIR [--config FILE] [--set k=v ...] [--resume]``."""

from __future__ import annotations

import argparse
import sys

from .config import EvoLMMConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="preset (tiny, qwen2.5-vl-3b/7b/72b), hub id or local folder")
    p.add_argument("--steps", type=int, help="total training steps (config total_steps)")
    p.add_argument("--output-dir", help="where log.jsonl and checkpoint-<step>/ go (config output_dir)")
    p.add_argument("--data-dir", help="image pool folder (config data_dir)")
    p.add_argument("--config", help="YAML file of config fields")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="config override (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output-dir")


def config_from_args(args: argparse.Namespace) -> EvoLMMConfig:
    cfg = EvoLMMConfig.from_yaml(args.config) if args.config else EvoLMMConfig()
    cfg = cfg.with_overrides(args.set)
    flags = {"model": args.model, "total_steps": args.steps, "output_dir": args.output_dir, "data_dir": args.data_dir}
    return cfg.replace(**{k: v for k, v in flags.items() if v is not None})


def main(args: argparse.Namespace) -> int:
    """Mistakes (bad config, image pool, model, checkpoint) raise; ``python -m evolmm_lib`` prints them."""
    from .trainer import train

    trainer = train(config_from_args(args), resume=args.resume)
    if trainer.is_main:
        skipped = trainer.pool.skipped_by_reason()
        print(f"[evolmm] {trainer.global_step} steps; log {trainer.output_dir / 'log.jsonl'}"
              + (f"; skipped images: {skipped}" if skipped else ""), file=sys.stderr)
    return 0
