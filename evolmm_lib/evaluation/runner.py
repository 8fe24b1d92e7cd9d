"""Generate and score: ``evaluate(backbone, benchmark, ...)`` with the solver adapter on or off.

Decoding as lmms-eval: system prompt "You are a helpful assistant.", greedy, batched; the task's token
budget. Each response is post-processed as the EvoLMM wrapper does (first ``<answer>``, else first
``\\boxed{}``, stripped); the task extracts the answer from that once and scores the extraction.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .datasets import load_benchmark, record_id, record_image
from .extraction import postprocess_response
from ..prompts import SYSTEM_PROMPT
from .tasks import DEFAULT_HARNESS, HARNESSES, Task, get_task

log = logging.getLogger("evolmm")


@dataclass
class EvalResult:
    """Per-item rows (id, prompt, response, post, extracted, answer, score) and a summary."""

    rows: list[dict]
    summary: dict = field(default_factory=dict)

    def write(self, path: str | os.PathLike) -> Path:
        """``.csv`` → the rows; anything else → JSON with summary and rows."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".csv":
            with open(path, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=list(self.rows[0]) if self.rows else ["id"])
                w.writeheader()
                w.writerows(self.rows)
        else:
            path.write_text(json.dumps({"summary": self.summary, "rows": self.rows}, indent=1, ensure_ascii=False))
        return path


def _gold(doc: dict) -> str:
    for key in ("answer", "answers"):
        if key in doc:
            return str(doc[key])
    return ""


def evaluate(backbone, benchmark: str | Task, records: list[dict] | None = None, *, data_dir=None, split=None,
             role: str | None = "solver", limit: int | None = None, batch_size: int = 8,
             max_new_tokens: int | None = None, judge=None, output=None, progress: bool = True,
             train_pool=None, allow_contamination: bool = False, harness: str = DEFAULT_HARNESS) -> EvalResult:
    """Evaluate ``backbone`` playing ``role`` ("solver" = trained adapter, None/"base" = adapters off).

    ``records`` (from :func:`~evolmm_lib.evaluation.datasets.load_benchmark`) or ``data_dir``/``split``;
    ``limit`` keeps the first items. ``train_pool``: the training image folder, checked for overlap with
    the evaluated images (refused unless ``allow_contamination``). Unreadable images are skipped and counted.
    ``harness``: whose scoring rules, the official repository's lmms-eval "0.5" (default) or "0.7.3".
    Rows: ``response`` (raw), ``post`` (post-processed), ``extracted``, ``answer``, ``score``; summary
    ``score`` = 100 × the mean row score.
    """
    from tqdm import tqdm

    from ..rollout import generate

    role = None if role in (None, "base", "none") else role
    task = get_task(benchmark)
    if harness not in HARNESSES:
        raise ValueError(f"harness must be one of {HARNESSES}, got {harness!r}")
    if records is None:
        records = load_benchmark(task, data_dir, split, limit)
    records = records[:limit] if limit is not None else records
    if train_pool is not None:
        from .contamination import guard

        guard(train_pool, records, task.name, allow=allow_contamination)
    budget = max_new_tokens or task.max_new_tokens
    rows, skipped = [], {}
    t0 = time.time()
    batches = [records[i:i + batch_size] for i in range(0, len(records), batch_size)]
    bar = tqdm(total=len(records), desc=f"{task.name} ({role or 'base'})", disable=not progress)
    for batch in batches:
        images, docs = [], []
        for doc in batch:
            try:
                images.append(record_image(doc))
                docs.append(doc)
            except Exception as e:  # noqa: BLE001 - counted skip, named in the summary
                skipped[record_id(doc)] = str(e)
        if docs:
            prompts = [task.build_prompt(d) for d in docs]
            gen = generate(backbone, role, images, prompts, num_samples=1, max_new_tokens=budget,
                           do_sample=False, system=SYSTEM_PROMPT)
            for doc, prompt, text in zip(docs, prompts, gen.texts):
                post = postprocess_response(text)
                extracted, score = task.grade(doc, post, judge, harness)
                rows.append({"id": record_id(doc), "prompt": prompt, "response": text, "post": post,
                             "extracted": str(extracted), "answer": _gold(doc), "score": score})
        bar.update(len(batch))
    bar.close()
    seconds = time.time() - t0
    n = len(rows)
    summary = {"benchmark": task.name, "harness": harness, "role": role or "base", "model": backbone.name,
               "n": n, "score": round(100 * sum(r["score"] for r in rows) / n, 2) if n else float("nan"),
               "seconds": round(seconds, 2), "items_per_s": round(n / seconds, 3) if seconds > 0 else None,
               "max_new_tokens": budget, "skipped": skipped}
    if skipped:
        log.warning("%s: skipped %d item(s) with unreadable images", task.name, len(skipped))
    result = EvalResult(rows, summary)
    if output is not None:
        result.write(output)
    return result
