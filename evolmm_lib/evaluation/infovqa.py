"""InfographicVQA val (lmms-eval task ``infovqa_val``): ANLS with threshold 0.5 over the gold answers."""

from __future__ import annotations

from .extraction import levenshtein



def build_prompt(doc: dict) -> str:
    return f"{doc['question']}\nAnswer the question using a single word or phrase."


def anls(references: list[str], prediction: str, threshold: float = 0.5) -> float:
    """1 − normalised edit distance to the closest reference; below ``threshold`` counts 0."""
    values = []
    for answer in references:
        gt = " ".join(answer.strip().lower().split())
        det = " ".join(prediction.strip().lower().split())
        length = max(len(answer.upper()), len(prediction.upper()))
        values.append(0.0 if length == 0 else levenshtein(gt, det) / length)
    result = 1 - min(values)
    return 0.0 if result < threshold else float(result)


def extract(doc: dict, response: str, judge=None) -> str:
    return str(response).strip()


def score(doc: dict, extracted: str, judge=None, harness: str = "0.5") -> float:
    answers = doc["answers"] if isinstance(doc["answers"], list) else [doc["answers"]]
    return anls([str(a) for a in answers], extracted)
