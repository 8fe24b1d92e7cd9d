"""Answer extraction: the EvoLMM wrapper's post-processing, a rule-based extractor, an optional judge.

Pipeline of one item: model text → :func:`postprocess_response` (what the authors' lmms-eval wrapper
returns to the harness) → the benchmark's lmms-eval scorer. Where lmms-eval asks a GPT model to extract
the answer (MathVista, MathVerse), :func:`rule_extract` is the offline default and :class:`Judge`
calls any OpenAI-compatible endpoint the user configures.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from dataclasses import dataclass

from ..prompts import strip_tags

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def first_boxed(text: str) -> str | None:
    r"""Content of the first ``\boxed{...}`` (balanced braces; unbalanced: to the end), else None."""
    start = text.find("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return text[i:]


def postprocess_response(text: str) -> str:
    r"""EvoLMM evaluation wrapper: first ``<answer>…</answer>`` text, else first ``\boxed{…}``, stripped."""
    text = str(text or "")
    tagged = strip_tags(text, "answer")
    if tagged is not None:
        return tagged.strip()
    boxed = first_boxed(text)
    return (boxed if boxed is not None else text).strip()


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert/delete/substitute, cost 1), as ``Levenshtein.distance``."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_ANSWER_IS = re.compile(r"(?:final answer|answer|correct option|correct choice)\s*(?:is|:|=)?\s*[:\s]*(.+)", re.I)
_LETTER = re.compile(r"^\(?([A-Z])\)?(?:[.:)\s]|$)")


def last_number(text: str) -> str | None:
    """The last number in ``text`` (thousands commas dropped), else None."""
    found = _NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


def rule_extract(response: str, choices: list | None = None, numeric: bool = False) -> str:
    """Offline answer extraction (replaces lmms-eval's GPT extractor).

    Order: an option letter (``B``, ``(B)``, ``B. text``, "the answer is B") → that letter; a choice text
    found verbatim → that choice; "The answer is X" / "Answer: X" → X; for numeric questions the last
    number; else the stripped response.
    """
    text = str(response or "").strip()
    if not text:
        return ""
    m = _ANSWER_IS.search(text)
    tail = m.group(1).strip().rstrip(".").strip() if m else text
    tail = tail.strip("*$ ").strip()
    if choices:
        letters = LETTERS[: len(choices)]
        for candidate in (tail, text):
            lm = _LETTER.match(candidate)
            if lm and lm.group(1) in letters:
                return lm.group(1)
        for candidate in (tail, text):
            hits = [str(c) for c in choices if str(c).strip() and str(c).strip().lower() == candidate.lower()]
            if hits:
                return hits[0]
        contained = [str(c) for c in choices if str(c).strip() and str(c).lower() in text.lower()]
        if len(contained) == 1:
            return contained[0]
        return tail
    if numeric:
        num = last_number(tail) or last_number(text)
        return num if num is not None else tail
    return tail


@dataclass
class Judge:
    """An OpenAI-compatible chat endpoint used to extract or match answers (optional).

    ``base_url`` like ``http://localhost:8000/v1``; the key is read from the environment variable
    ``api_key_env`` (default ``OPENAI_API_KEY``), never stored.
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 60.0

    def chat(self, prompt: str, max_tokens: int = 256) -> str:
        body = json.dumps({"model": self.model, "temperature": 0, "max_tokens": max_tokens,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.base_url.rstrip("/") + "/chat/completions", body, headers)
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            return json.loads(r.read())["choices"][0]["message"]["content"].strip()

    def extract(self, question: str, response: str) -> str:
        """The short final answer stated in ``response`` (empty on failure)."""
        prompt = ("Extract the final answer from the model response to the question. Reply with the answer "
                  "only: an option letter for multiple choice, else a number, word, phrase or list.\n\n"
                  f"Question: {question}\n\nModel response: {response}\n\nExtracted answer:")
        try:
            return self.chat(prompt)
        except Exception:  # noqa: BLE001 - a failing judge must not stop an evaluation
            return ""

    def match(self, question: str, answer: str, response: str) -> bool:
        """Whether ``response`` states an answer equivalent to the gold ``answer``."""
        prompt = ("Judge whether the model response gives the same final answer as the standard answer. "
                  "Reply 1 if equivalent, 0 otherwise, and nothing else.\n\n"
                  f"Question: {question}\nStandard answer: {answer}\nModel response: {response}\nJudgement:")
        try:
            return self.chat(prompt, max_tokens=4).strip().startswith("1")
        except Exception:  # noqa: BLE001
            return False
