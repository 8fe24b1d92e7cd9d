"""``python -m evolmm_lib evaluate --model tiny --benchmark mathvision --data-dir DIR --limit 20 --output FILE``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .tasks import DEFAULT_HARNESS, HARNESSES, TASKS, get_task


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="tiny", help="preset (tiny, qwen2.5-vl-7b, ...), hub id or local folder")
    p.add_argument("--backend", default=None, help="auto | transformers | unsloth")
    p.add_argument("--benchmark", required=True, help=f"one or several, comma-separated: {', '.join(TASKS)}")
    p.add_argument("--data-dir", default=None, help="folder with data.jsonl (+ images), or 'hub'; default: the "
                   "sample under $EVOLMM_BENCHMARKS_DIR when there is one, else the hub set")
    p.add_argument("--split", default=None, help="hub split (default: the one lmms-eval evaluates)")
    p.add_argument("--adapters", default=None, help="checkpoint folder with solver/ and proposer/ (LoRA or QLoRA "
                   "adapters, or the whole models of update=full; the checkpoint's trainer state says which)")
    p.add_argument("--load-in-4bit", action="store_true", help="4-bit (nf4) base weights, needs bitsandbytes; a "
                   "QLoRA checkpoint loads its base in 4 bits without it")
    p.add_argument("--base", action="store_true", help="evaluate the base model (adapters off)")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N items only")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the benchmark's budget")
    p.add_argument("--harness", default=DEFAULT_HARNESS, choices=HARNESSES,
                   help="whose scoring rules: the official repository's lmms-eval 0.5 (default) or 0.7.3")
    p.add_argument("--output", default=None, help="results file (.json: summary + rows, .csv: rows); with several "
                   "benchmarks the benchmark name is added to the file name")
    p.add_argument("--train-pool", default=None, help="training image folder to check for contamination")
    p.add_argument("--allow-contamination", action="store_true", help="evaluate even if the pool holds test images")
    p.add_argument("--judge-url", default=None, help="OpenAI-compatible endpoint (e.g. http://localhost:8000/v1) "
                   "for MathVista/MathVerse answer extraction; default: rule-based")
    p.add_argument("--judge-model", default="gpt-4o-2024-11-20")
    p.add_argument("--judge-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    p.add_argument("--no-progress", action="store_true")


def output_path(output: str | None, benchmark: str, several: bool) -> Path | None:
    if output is None:
        return None
    out = Path(output)
    return out.with_name(f"{out.stem}-{benchmark}{out.suffix or '.json'}") if several else out


def main(args: argparse.Namespace) -> int:
    from .datasets import load_benchmark

    tasks = [get_task(b.strip()) for b in args.benchmark.split(",") if b.strip()]  # unknown names fail here,
    records = {t.name: load_benchmark(t, args.data_dir, args.split, args.limit) for t in tasks}  # missing data here
    from ..backbone import load_backbone  # torch: only once the request is known to be valid
    from ..config import EvoLMMConfig
    from .extraction import Judge
    from .runner import evaluate

    backbone = load_backbone(args.model, backend=args.backend, config=EvoLMMConfig(load_in_4bit=args.load_in_4bit),
                             adapters_from=args.adapters)
    judge = Judge(args.judge_url, args.judge_model, args.judge_key_env) if args.judge_url else None
    for task in tasks:
        result = evaluate(backbone, task, records[task.name], role=None if args.base else "solver",
                          limit=args.limit, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                          judge=judge, output=output_path(args.output, task.name, len(tasks) > 1),
                          progress=not args.no_progress, train_pool=args.train_pool,
                          allow_contamination=args.allow_contamination, harness=args.harness)
        print(json.dumps(result.summary))
    return 0
