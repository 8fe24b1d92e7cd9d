"""MathVerse testmini (lmms-eval task ``mathverse_testmini``): the dataset's ``query_wo`` prompt.

lmms-eval scores MathVerse only with a GPT judge (no rule path). The kit's default is rule-based:
extract an option letter (multi-choice) or the final value (free-form) and compare with the gold answer
(letters exactly; values as numbers at 2 decimals, else as normalised text). A configured
:class:`~evolmm_lib.evaluation.extraction.Judge` replaces the comparison with the judge's 0/1.
"""

from __future__ import annotations

from .extraction import LETTERS, last_number, rule_extract



def build_prompt(doc: dict) -> str:
    return str(doc["query_wo"])


def _is_choice(doc: dict) -> bool:
    return str(doc["question_type"]).startswith("multi") and str(doc["answer"]).strip().upper() in LETTERS


def extract(doc: dict, response: str, judge=None) -> str:
    """Rule-based: the option letter or final value; with a judge, the response itself (the judge reads it)."""
    response = str(response).strip()
    if judge is not None:
        return response
    if _is_choice(doc):
        got = rule_extract(response, list("ABCDE"))
        return got.strip().strip("().").upper()[:1] if got else ""
    return rule_extract(response, None, numeric=last_number(str(doc["answer"])) is not None)


def _norm(s: str) -> str:
    return "".join(str(s).lower().replace("$", "").replace("\\", "").split()).rstrip(".")


def score(doc: dict, pred: str, judge=None, harness: str = "0.5") -> float:
    if judge is not None:
        return 1.0 if judge.match(str(doc.get("question_for_eval", doc["question"])), str(doc["answer"]), pred) else 0.0
    gold = str(doc["answer"]).strip()
    if _is_choice(doc):
        return 1.0 if pred == gold.upper() else 0.0
    try:
        return 1.0 if round(float(pred), 2) == round(float(last_number(gold) or gold), 2) else 0.0
    except (TypeError, ValueError, OverflowError):
        return 1.0 if pred and _norm(pred) == _norm(gold) else 0.0
