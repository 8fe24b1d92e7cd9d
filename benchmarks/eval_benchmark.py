"""Print scorer agreement with lmms-eval (pinned fixtures) and evaluation throughput on the tiny backbone.

    EVOLMM_BENCHMARKS_DIR=../shared/benchmarks HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/eval_benchmark.py \
        [--items 24] [--tokens 16 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def agreement() -> None:
    from evolmm_lib.evaluation import get_task, score_response
    from evolmm_lib.evaluation.datasets import load_local, local_sample

    for path in sorted((REPO / "tests" / "fixtures" / "lmms_eval").glob("*.json")):
        data = json.loads(path.read_text())
        if "benchmark" not in data:  # v0_5_differences.json
            continue
        b = data["benchmark"]
        docs, folder = {}, local_sample(get_task(b))
        if folder is not None:
            docs = {str(d.get("id", d.get("pid"))): d for d in load_local(b, folder, require_images=False)}
        t0 = time.time()
        same = sum(score_response(b, c.get("doc") or docs[str(c["id"])], c["response"], harness="0.7.3") == c["score"]
                   for c in data["cases"])
        n = len(data["cases"])
        print(f"agreement {b:11s} lmms-eval {data['lmms_eval_version']}: {same}/{n} = {100 * same / n:.2f}% "
              f"({n / (time.time() - t0):.0f} scores/s)")


def throughput(items: int, tokens: list[int], batch_size: int) -> None:
    import torch

    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.evaluation import evaluate
    from evolmm_lib.evaluation.datasets import load_benchmark

    torch.set_num_threads(max(1, torch.get_num_threads()))
    bb = load_backbone("tiny")
    for name in ("chartqa", "mathvision"):
        records = load_benchmark(name, limit=items)
        evaluate(bb, name, records[:2], max_new_tokens=4, progress=False)  # warm-up
        for t in tokens:
            for role in ("base", "solver"):
                s = evaluate(bb, name, records, role=role, batch_size=batch_size, max_new_tokens=t, progress=False).summary
                print(f"throughput tiny {name:10s} {role:6s} {t:4d} new tokens, batch {batch_size}: "
                      f"{s['items_per_s']:.2f} items/s ({s['n']} items, {s['seconds']:.1f} s)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=24)
    ap.add_argument("--tokens", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--skip-agreement", action="store_true")
    a = ap.parse_args()
    if not a.skip_agreement:
        agreement()
    throughput(a.items, a.tokens, a.batch_size)
