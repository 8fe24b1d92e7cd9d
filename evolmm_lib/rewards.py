"""EvoLMM rewards as plain functions (paper §3.2–3.3; official ``src/train.py``).

One path: :func:`score_group` turns the N normalised answers of ONE (image, question) pair (and the
words each completion wrote before ``<answer>``) into everything the method needs — continuous and
discrete Solver rewards, H, the Proposer's reward, the majority. :func:`score_completions` parses raw
completions once and calls it. Answers are extracted with :func:`evolmm_lib.prompts.parse_answer` and
normalised with :func:`normalize_answer`, exactly as the official code does before voting. The four
public functions over raw completions (``solver_rewards``, ``discrete_solver_rewards``,
``answer_entropy``, ``proposer_reward``) are thin entries onto that path.

Symbols: p(a) — empirical frequency of a normalised answer among the N samples; γ — softness
exponent; λ_len, τ — length-penalty weight and target word count; H — answer entropy (nats);
μ_H, σ_H — centre and width of the Proposer's entropy band-pass.
"""

from __future__ import annotations

import math
import string
from collections import Counter
from dataclasses import dataclass
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


@dataclass(frozen=True)
class GroupScore:
    """What one group of N Solver samples earns (paper Eq. 3–4)."""

    answers: tuple[str, ...]
    """The N normalised answers."""
    continuous: tuple[float, ...]
    """r_i = p(a_i)^γ · (1 − λ_len · pen(w_i))."""
    discrete: tuple[float, ...]
    """1.0 for samples on the majority answer, else 0.0."""
    entropy: float
    """H of the answer frequencies (nats)."""
    proposer_reward: float
    """exp(−(H−μ_H)²/(2σ_H²))."""
    majority: str
    majority_count: int

    @property
    def agreement(self) -> float:
        """Majority fraction: majority_count / N."""
        return self.majority_count / len(self.answers)

    def solver_rewards(self, reward: str = "continuous") -> list[float]:
        """The rewards the Solver is trained on: ``continuous`` or ``discrete``."""
        return list(self.continuous if reward == "continuous" else self.discrete)


def score_group(answers: Sequence[str], words: Sequence[int], gamma: float = 0.7, len_penalty_weight: float = 0.1,
                len_target_words: int = 6, mu: float = 0.9, sigma: float = 0.35) -> GroupScore:
    """Score N normalised ``answers`` whose completions wrote ``words`` words before ``<answer>``."""
    if isinstance(answers, str) or len(answers) == 0 or len(words) != len(answers):
        raise ValueError("expected N >= 1 normalised answers and N pre-answer word counts")
    n = float(len(answers))
    counts = Counter(answers)
    freq = {a: c / n for a, c in counts.items()}
    majority, count = majority_vote(answers)
    entropy = -sum(p * math.log(p) for p in freq.values())
    return GroupScore(
        answers=tuple(answers),
        continuous=tuple((freq[a] ** gamma) * (1.0 - len_penalty_weight * length_penalty(w, len_target_words))
                         for a, w in zip(answers, words)),
        discrete=tuple(1.0 if a == majority else 0.0 for a in answers),
        entropy=entropy, proposer_reward=gaussian_band_pass(entropy, mu, sigma),
        majority=majority, majority_count=count)


def score_completions(completions: Sequence[str], **settings) -> GroupScore:
    """:func:`score_group` of raw completions, each parsed once (``settings``: γ, λ_len, τ, μ_H, σ_H)."""
    _check(completions)
    return score_group(normalized_answers(completions), [pre_answer_word_count(c) for c in completions], **settings)


def solver_rewards(
    completions: Sequence[str],
    gamma: float = 0.7,
    len_penalty_weight: float = 0.1,
    len_target_words: int = 6,
) -> list[float]:
    """Continuous self-consistency reward r_i = p(a_i)^γ · (1 − λ_len · pen(w_i)) (paper Eq. 3)."""
    return list(score_completions(completions, gamma=gamma, len_penalty_weight=len_penalty_weight,
                                  len_target_words=len_target_words).continuous)


def discrete_solver_rewards(completions: Sequence[str]) -> list[float]:
    """Discrete ablation: 1.0 for samples whose answer equals the majority answer, else 0.0."""
    return list(score_completions(completions).discrete)


def answer_entropy(completions: Sequence[str]) -> float:
    """H: Shannon entropy (nats) of the normalised-answer frequencies among the N samples."""
    return score_completions(completions).entropy


def gaussian_band_pass(entropy: float, mu: float = 0.9, sigma: float = 0.35) -> float:
    """exp(−(H−μ_H)²/(2σ_H²)); 0 for σ_H ≤ 0 as in the official code."""
    if sigma <= 0:
        return 0.0
    return math.exp(-((entropy - mu) ** 2) / (2.0 * sigma * sigma))


def proposer_reward(completions: Sequence[str], mu: float = 0.9, sigma: float = 0.35) -> float:
    """Proposer reward: entropy band-pass on the Solver's answers (paper Eq. 4)."""
    return score_completions(completions, mu=mu, sigma=sigma).proposer_reward


def config_settings(config) -> dict:
    """:func:`score_group`'s settings from an :class:`~evolmm_lib.config.EvoLMMConfig`."""
    return {"gamma": config.solver_soft_gamma, "len_penalty_weight": config.len_penalty_weight,
            "len_target_words": config.len_penalty_target_words, "mu": config.prop_entropy_mu,
            "sigma": config.prop_entropy_sigma}
