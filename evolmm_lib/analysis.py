"""Small analyses behind notebooks 02–03: question diversity, answer agreement, rewards vs agreement.

Plain functions over lists of strings; the notebooks only plot what these return. Symbols as in
:mod:`evolmm_lib.rewards`: N samples, γ, λ_len, τ, H (nats), μ_H, σ_H.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterator, Sequence

from .rewards import gaussian_band_pass, majority_vote, score_completions


# --- questions (notebook 02) ------------------------------------------------------------------
def ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    """Word n-grams of ``text`` (lower-cased, whitespace-split)."""
    words = text.lower().split()
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """distinct-n: unique word n-grams / all word n-grams over ``texts`` (0.0 when there are none)."""
    grams = [g for t in texts for g in ngrams(t, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def question_stats(questions: Sequence[str]) -> dict[str, float]:
    """Length (words) and diversity (distinct-1/2, unique questions) of a batch of questions."""
    if not questions:
        raise ValueError("question_stats needs at least one question")
    lengths = [len(q.split()) for q in questions]
    return {
        "questions": len(questions),
        "unique_questions": len(set(q.strip().lower() for q in questions)),
        "mean_words": sum(lengths) / len(lengths),
        "min_words": min(lengths),
        "max_words": max(lengths),
        "distinct_1": distinct_n(questions, 1),
        "distinct_2": distinct_n(questions, 2),
    }


# --- answers (notebook 03) --------------------------------------------------------------------
def agreement(normalized: Sequence[str]) -> float:
    """Majority fraction: count of the most frequent normalised answer / N."""
    return majority_vote(list(normalized))[1] / len(normalized)


def consistency_row(completions: Sequence[str], gamma: float = 0.7, len_penalty_weight: float = 0.1,
                    len_target_words: int = 6, mu: float = 0.9, sigma: float = 0.35) -> dict:
    """Agreement, H, the Proposer's band-pass reward and the mean Solver rewards for N completions
    (one :func:`~evolmm_lib.rewards.score_completions`, as the trainer scores a group)."""
    sc = score_completions(completions, gamma=gamma, len_penalty_weight=len_penalty_weight,
                           len_target_words=len_target_words, mu=mu, sigma=sigma)
    return {
        "n": len(completions),
        "distinct_answers": len(set(sc.answers)),
        "majority_answer": sc.majority,
        "agreement": sc.agreement,
        "entropy": sc.entropy,
        "proposer_reward": sc.proposer_reward,
        "mean_continuous": sum(sc.continuous) / len(sc.continuous),
        "mean_discrete": sum(sc.discrete) / len(sc.discrete),
    }


def answer_histogram(normalized: Sequence[str]) -> list[tuple[str, int]]:
    """(answer, count) pairs, most frequent first (ties: first seen first)."""
    return Counter(normalized).most_common()


# --- analytic reward tables (notebook 03) -----------------------------------------------------
def partitions(n: int, largest: int | None = None) -> Iterator[tuple[int, ...]]:
    """Integer partitions of ``n`` as non-increasing tuples: every way N answers can split into groups."""
    largest = n if largest is None else largest
    if n == 0:
        yield ()
        return
    for k in range(min(n, largest), 0, -1):
        for rest in partitions(n - k, k):
            yield (k,) + rest


def completions_for_partition(parts: Sequence[int]) -> list[str]:
    """Short synthetic completions ``<answer>a_k</answer>`` realising an answer partition (no length penalty)."""
    return [f"<answer>{chr(ord('a') + k)}</answer>" for k, size in enumerate(parts) for _ in range(size)]


def reward_vs_agreement_table(n: int = 5, gamma: float = 0.7, mu: float = 0.9, sigma: float = 0.35) -> list[dict]:
    """One row per answer partition of N: agreement, H, mean continuous / discrete Solver reward,
    the reward of a sample in the majority group and in a singleton group, and the Proposer reward."""
    rows = []
    for parts in partitions(n):
        sc = score_completions(completions_for_partition(parts), gamma=gamma, mu=mu, sigma=sigma)
        rows.append({
            "partition": "+".join(map(str, parts)),
            "agreement": parts[0] / n,
            "entropy": sc.entropy,
            "mean_continuous": sum(sc.continuous) / n,
            "mean_discrete": sum(sc.discrete) / n,
            "majority_continuous": sc.continuous[0],
            "minority_continuous": sc.continuous[-1],
            "proposer_reward": sc.proposer_reward,
        })
    return rows


def band_pass_curve(mu: float = 0.9, sigma: float = 0.35, h_max: float = 2.0, points: int = 201) -> tuple[list[float], list[float]]:
    """(H, exp(−(H−μ_H)²/(2σ_H²))) on a grid from 0 to ``h_max`` nats."""
    hs = [h_max * i / (points - 1) for i in range(points)]
    return hs, [gaussian_band_pass(h, mu, sigma) for h in hs]
