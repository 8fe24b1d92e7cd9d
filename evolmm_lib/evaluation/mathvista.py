"""MathVista testmini, scored as lmms-eval task ``mathvista_testmini_format`` scores; prompted with the dataset's
``query`` (hint, question, ``(A)`` choices), which is not that task's prompt (question, ``A.`` choices, "Answer
with the option's letter ... directly.") nor that of the group's other two tasks.

Scoring as lmms-eval: the response is taken as the extraction when it is a choice, an integer or a float
(its rule path); otherwise lmms-eval asks GPT to extract the answer, and here :func:`rule_extract`
(default) or a configured :class:`~evolmm_lib.evaluation.extraction.Judge` does. The extraction is then
normalised as lmms-eval does (letter → choice, closest choice by edit distance, int, float rounded to the
record's precision, list) and compared as strings.

One deliberate fix: the hub stores ``precision`` as a float (1.0), which makes lmms-eval's
``round(x, 1.0)`` raise and every float item fail; the kit rounds to ``int(precision)``.
"""

from __future__ import annotations

import re

from .extraction import levenshtein, rule_extract



def build_prompt(doc: dict) -> str:
    return str(doc["query"])


def rule_path(response: str, doc: dict) -> str | None:
    """lmms-eval's extraction without GPT: the response itself when it is a choice / int / float."""
    if not response:
        return ""
    if doc["question_type"] == "multi_choice" and response in (doc.get("choices") or []):
        return response
    if doc["answer_type"] == "integer":
        try:
            return str(int(response))
        except ValueError:
            pass
    if doc["answer_type"] == "float":
        try:
            return str(float(response))
        except ValueError:
            pass
    return None


def normalize_extracted_answer(extraction, choices, question_type, answer_type, precision):
    """lmms-eval's normalisation (``precision`` taken as an int)."""
    if question_type == "multi_choice":
        extraction = extraction.strip() if isinstance(extraction, str) else str(extraction)
        letter = re.findall(r"\(([a-zA-Z])\)", extraction)
        if len(letter) > 0:
            extraction = letter[0].upper()
        options = [chr(ord("A") + i) for i in range(len(choices))]
        if extraction in options:
            return choices[options.index(extraction)]
        distances = [levenshtein(extraction, c) for c in choices]
        return choices[distances.index(min(distances))]
    if answer_type == "integer":
        try:
            return str(int(float(extraction)))
        except Exception:  # noqa: BLE001
            return None
    if answer_type == "float":
        try:
            return str(round(float(extraction), int(precision or 0)))
        except Exception:  # noqa: BLE001
            return None
    if answer_type == "list":
        return str(extraction)
    return extraction


def extract(doc: dict, response: str, judge=None) -> str:
    response = str(response).strip()
    got = rule_path(response, doc)
    if got is not None:
        return got
    if judge is not None:
        return judge.extract(str(doc.get("query", doc["question"])), response)
    numeric = doc["answer_type"] in ("integer", "float")
    return rule_extract(response, doc.get("choices") if doc["question_type"] == "multi_choice" else None, numeric)


def score(doc: dict, extraction: str, judge=None, harness: str = "0.5") -> float:
    choices = doc.get("choices") or []
    if doc["question_type"] == "multi_choice" and not choices:
        return 0.0
    prediction = normalize_extracted_answer(extraction, choices, doc["question_type"], doc["answer_type"],
                                            doc.get("precision") or 0)
    if doc.get("answer") is None:
        return 0.0
    return 1.0 if str(prediction).strip() == str(doc["answer"]).strip() else 0.0
