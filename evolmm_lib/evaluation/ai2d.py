"""AI2D (lmms-eval task ``ai2d``): option letter, "flexible-extract" filter, exact match.

Scoring as the harness: a response starting with ``X.`` is reduced to ``X``; it is then stripped and
compared with the gold letter ignoring case and punctuation.
"""

from __future__ import annotations

import re
import string

_LETTER_DOT = re.compile(r"^\s*([A-Z])\.")
_PUNCT = str.maketrans("", "", string.punctuation)


def build_prompt(doc: dict) -> str:
    choices = "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(doc["options"]))
    return f"{doc['question']}\n{choices}\nAnswer with the option's letter from the given choices directly."


def target(doc: dict) -> str:
    return chr(65 + int(doc["answer"]))


def exact_match(prediction: str, reference: str) -> bool:
    """lmms-eval ``exact_match`` with ignore_case and ignore_punctuation (numpy str semantics)."""
    clean = lambda s: s.rstrip("\x00").lower().translate(_PUNCT)  # noqa: E731 - numpy drops trailing NULs
    return clean(prediction) == clean(reference)


def extract(doc: dict, response: str, judge=None) -> str:
    response = str(response)
    m = _LETTER_DOT.match(response)
    return (m.group(1) if m else response).strip()


def score(doc: dict, extracted: str, judge=None, harness: str = "0.5") -> float:
    return 1.0 if exact_match(extracted, target(doc)) else 0.0
