"""Rewards: the paper's default settings, the first ``<answer>`` tag, and each error message, pinned exactly."""

from __future__ import annotations

import math

import pytest

from evolmm_lib.rewards import (gaussian_band_pass, length_penalty, majority_vote, pre_answer_word_count, score_group,
                                solver_rewards)


def test_defaults_are_the_papers():
    answers, words = ["a", "a", "b", "c"], [9, 0, 20, 3]
    explicit = score_group(answers, words, gamma=0.7, len_penalty_weight=0.1, len_target_words=6, mu=0.9, sigma=0.35)
    assert score_group(answers, words) == explicit
    assert explicit.continuous[0] == pytest.approx(0.5 ** 0.7 * (1 - 0.1 * 0.5))  # (9 − 6)/6 = 0.5
    assert length_penalty(9) == 0.5 and length_penalty(12) == 1.0 and length_penalty(6) == 0.0
    assert gaussian_band_pass(0.5) == pytest.approx(math.exp(-(0.4 ** 2) / (2 * 0.35 ** 2)))
    assert explicit.proposer_reward == pytest.approx(gaussian_band_pass(explicit.entropy, 0.9, 0.35))


def test_solver_rewards_picks_the_kind():
    sc = score_group(["a", "a", "b"], [0, 0, 0])
    assert sc.solver_rewards() == sc.solver_rewards("continuous") == list(sc.continuous)
    assert sc.solver_rewards("discrete") == [1.0, 1.0, 0.0] != list(sc.continuous)


def test_words_are_counted_before_the_first_tag():
    assert pre_answer_word_count("a b <answer>1</answer> c d e <answer>2</answer>") == 2
    assert solver_rewards(["a b <answer>1</answer> " + "w " * 20 + "<answer>2</answer>"]) == [1.0]


@pytest.mark.parametrize("call, message", [
    (lambda: majority_vote([]), "majority_vote needs at least one answer"),
    (lambda: solver_rewards([]), "expected a non-empty list of completion strings"),
    (lambda: score_group([], []), "expected N >= 1 normalised answers and N pre-answer word counts"),
    (lambda: score_group("ab", [0, 0]), "expected N >= 1 normalised answers and N pre-answer word counts"),
    (lambda: score_group(["a", "b"], [0]), "expected N >= 1 normalised answers and N pre-answer word counts"),
])
def test_error_messages(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert str(e.value) == message
