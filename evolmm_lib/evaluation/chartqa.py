"""ChartQA (lmms-eval task ``chartqa``): relaxed accuracy, 5% relative tolerance for numbers."""

from __future__ import annotations


def build_prompt(doc: dict) -> str:
    return f"{doc['question']}\nAnswer the question with a single word."


def _to_float(text: str) -> float | None:
    try:
        return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def relaxed_correctness(prediction: str, target: str, max_relative_change: float = 0.05) -> bool:
    """Numbers (``%`` → /100) within 5% of a non-zero target; else case-insensitive exact match."""
    p, t = _to_float(prediction), _to_float(target)
    if p is not None and t:
        return abs(p - t) / abs(t) <= max_relative_change
    return prediction.lower() == target.lower()


def extract(doc: dict, response: str, judge=None) -> str:
    return str(response)


def score(doc: dict, extracted: str, judge=None, harness: str = "0.5") -> float:
    return 1.0 if relaxed_correctness(extracted, str(doc["answer"])) else 0.0
