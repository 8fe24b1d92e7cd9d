"""Labelled evaluation of the Solver on world items: sampled, majority-of-N, greedy, agreement, collapse.

* sampled accuracy — mean correctness of N samples at T = 1 (the primary metric: it is what the
  self-consistency reward moves);
* majority-of-N — correctness of the most frequent of the N answers (official tie rule);
* greedy — correctness of the temperature-0 answer;
* agreement — mean share of the N samples that agree with their majority;
* constant-answer rate — share of the single most frequent answer among all sampled answers on the
  split: a policy collapsed onto one self-consistent answer has a rate far above the world's most
  frequent true answer rate (the collapse detector).
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch

from ..prompts import build_solver_prompt
from ..rewards import normalized_answers, score_completions
from ..rollout import generate
from .world import Item


@torch.no_grad()
def evaluate(backbone, items: Sequence[Item], num_samples: int = 5, max_new_tokens: int = 12,
             temperature: float = 1.0, seed: int = 0, greedy: bool = True, batch_items: int = 50,
             role: str | None = "solver") -> dict:
    """Metrics of ``role`` on ``items`` (fractions in [0, 1]); per-item records under ``"items"``.

    Sampling is seeded by ``seed`` inside a forked RNG: evaluating never changes the caller's RNG stream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        records = _records(backbone, items, num_samples, max_new_tokens, temperature, greedy, batch_items, role)
    return summarize(records)


def _records(backbone, items, num_samples, max_new_tokens, temperature, greedy, batch_items, role) -> list[dict]:
    records = []
    for s in range(0, len(items), batch_items):
        chunk = list(items[s: s + batch_items])
        images = [it.image for it in chunk]
        prompts = [build_solver_prompt(it.question) for it in chunk]
        gen = generate(backbone, role, images, prompts, num_samples=num_samples, max_new_tokens=max_new_tokens,
                       temperature=temperature)
        greedy_texts = (generate(backbone, role, images, prompts, do_sample=False, max_new_tokens=max_new_tokens).texts
                        if greedy else [None] * len(chunk))
        for i, it in enumerate(chunk):
            texts = gen.texts[i * num_samples:(i + 1) * num_samples]
            sc = score_completions(texts)
            gold = str(it.answer)
            records.append({
                "question": it.question, "gold": gold, "answers": list(sc.answers),
                "greedy": None if greedy_texts[i] is None else normalized_answers([greedy_texts[i]])[0],
                "sampled_correct": sum(a == gold for a in sc.answers) / num_samples,
                "majority_correct": float(sc.majority == gold), "agreement": sc.agreement,
                "entropy": sc.entropy, "formatted": sum("<answer>" in t for t in texts) / num_samples,
            })
    return records


def summarize(records: list[dict]) -> dict:
    n = len(records)
    all_answers = [a for r in records for a in r["answers"]]
    top, top_n = Counter(all_answers).most_common(1)[0]
    out = {
        "n": n,
        "sampled_accuracy": sum(r["sampled_correct"] for r in records) / n,
        "majority_accuracy": sum(r["majority_correct"] for r in records) / n,
        "agreement": sum(r["agreement"] for r in records) / n,
        "constant_answer_rate": top_n / len(all_answers),
        "most_frequent_answer": top,
        "format_rate": sum(r["formatted"] for r in records) / n,
        "mean_entropy": sum(r["entropy"] for r in records) / n,
    }
    if records[0]["greedy"] is not None:
        out["greedy_accuracy"] = sum(r["greedy"] == r["gold"] for r in records) / n
    out["items"] = records
    return out


def without_items(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "items"}
