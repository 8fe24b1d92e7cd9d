"""EvoLMM rewards as plain functions (paper §3.2–3.3; official ``src/train.py``).

All four public functions take the N raw Solver completions of ONE (image, question) pair.
Answers are extracted with :func:`evolmm_lib.prompts.parse_answer` and normalised with
:func:`normalize_answer`, exactly as the official code does before voting.

Symbols: p(a) — empirical frequency of a normalised answer among the N samples; γ — softness
exponent; λ_len, τ — length-penalty weight and target word count; H — answer entropy (nats);
μ_H, σ_H — centre and width of the Proposer's entropy band-pass.
"""

from __future__ import annotations

import math
import string
from collections import Counter
from typing import Sequence

from .prompts import parse_answer


def normalize_answer(answer: str) -> str:
    """Official normalisation: lower-case, drop commas, collapse whitespace, strip punctuation."""
    s = answer.strip().lower().replace(",", "")
    s = " ".join(s.split())
    return s.strip(string.punctuation + " ")


def normalized_answers(completions: Sequence[str]) -> list[str]:
    """Extract (official fallbacks) and normalise the answer of each completion."""
    return [normalize_answer(parse_answer(c)) for c in completions]


def majority_vote(answers: Sequence[str]) -> tuple[str, int]:
    """Most frequent answer and its count; ties go to the answer seen first (official)."""
    if not answers:
        raise ValueError("majority_vote needs at least one answer")
    counts: dict[str, int] = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    return max(counts.items(), key=lambda kv: kv[1])


def pre_answer_word_count(completion: str) -> int:
    """w_i: whitespace words before the first ``<answer>`` (whole text when there is no tag)."""
    idx = completion.lower().find("<answer>")
    prefix = completion if idx == -1 else completion[:idx]
    return len(prefix.strip().split())


def length_penalty(words: int, len_target_words: int = 6) -> float:
    """min(1, max(0, (w − τ)/τ)) with τ clamped to ≥ 1 as in the official code."""
    tau = max(1, int(len_target_words))
    return min(1.0, max(0.0, (words - tau) / float(tau)))


def _check(completions: Sequence[str]) -> None:
    if isinstance(completions, str) or len(completions) == 0:
        raise ValueError("expected a non-empty list of completion strings")


def solver_rewards(
    completions: Sequence[str],
    gamma: float = 0.7,
    len_penalty_weight: float = 0.1,
    len_target_words: int = 6,
) -> list[float]:
    """Continuous self-consistency reward r_i = p(a_i)^γ · (1 − λ_len · pen(w_i)) (paper Eq. 3)."""
    _check(completions)
    answers = normalized_answers(completions)
    n = float(len(answers))
    freq = {a: c / n for a, c in Counter(answers).items()}
    return [
        (freq[a] ** gamma) * (1.0 - len_penalty_weight * length_penalty(pre_answer_word_count(c), len_target_words))
        for a, c in zip(answers, completions)
    ]


def discrete_solver_rewards(completions: Sequence[str]) -> list[float]:
    """Discrete ablation: 1.0 for samples whose answer equals the majority answer, else 0.0."""
    _check(completions)
    answers = normalized_answers(completions)
    majority, _ = majority_vote(answers)
    return [1.0 if a == majority else 0.0 for a in answers]


def answer_entropy(completions: Sequence[str]) -> float:
    """H: Shannon entropy (nats) of the normalised-answer frequencies among the N samples."""
    _check(completions)
    answers = normalized_answers(completions)
    n = float(len(answers))
    return -sum((c / n) * math.log(c / n) for c in Counter(answers).values())


def gaussian_band_pass(entropy: float, mu: float = 0.9, sigma: float = 0.35) -> float:
    """exp(−(H−μ_H)²/(2σ_H²)); 0 for σ_H ≤ 0 as in the official code."""
    if sigma <= 0:
        return 0.0
    return math.exp(-((entropy - mu) ** 2) / (2.0 * sigma * sigma))


def proposer_reward(completions: Sequence[str], mu: float = 0.9, sigma: float = 0.35) -> float:
    """Proposer reward: entropy band-pass on the Solver's answers (paper Eq. 4)."""
    return gaussian_band_pass(answer_entropy(completions), mu, sigma)
