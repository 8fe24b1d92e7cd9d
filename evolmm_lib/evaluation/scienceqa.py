"""ScienceQA-IMG (lmms-eval task ``scienceqa_img``): option letter, LLaVA-style exact match."""

from __future__ import annotations


def build_prompt(doc: dict) -> str:
    choices = "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(doc["choices"]))
    context = f"Context: {doc['hint']}\n" if doc.get("hint") else ""
    return f"{context}{doc['question']}\n{choices}\nAnswer with the option's letter from the given choices directly."


def target(doc: dict) -> str:
    return chr(65 + int(doc["answer"]))


def extract(doc: dict, response: str, judge=None) -> str:
    """The stripped response; ``X. text`` (capital letter, dot) → ``X``."""
    pred = str(response).strip()
    if len(pred) >= 2 and pred[0].isupper() and pred[1] == ".":
        return pred[0]
    return pred


def score(doc: dict, extracted: str, judge=None, harness: str = "0.5") -> float:
    return 1.0 if extracted.lower() == target(doc).strip().lower() else 0.0
