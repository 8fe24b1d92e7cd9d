"""Majority vote: ties go to the answer seen first, whatever the answers' text or order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolmm_lib.rewards import majority_vote, score_group


def first_seen_majority(answers):
    """The reference rule written out: the highest count, and among equals the earliest first appearance."""
    best = max(answers.count(a) for a in answers)
    return next(a for a in answers if answers.count(a) == best), best


@pytest.mark.parametrize("answers, want", [
    (["b", "a", "a", "b"], ("b", 2)),          # b first: b, although "a" < "b"
    (["a", "b", "b", "a"], ("a", 2)),          # a first: a, although "b" > "a"
    (["z", "y", "x"], ("z", 1)),               # three-way tie of singletons: the first
    (["10", "9", "9", "10"], ("10", 2)),       # numbers as text: not compared as numbers nor as strings
    (["", "x", "x", ""], ("", 2)),             # the empty answer is an answer like any other
    (["c", "a", "b", "b", "a"], ("a", 2)),     # c is first but has fewer: the first of the tied pair
    (["q"], ("q", 1)),
])
def test_ties_go_to_the_first_seen(answers, want):
    assert majority_vote(answers) == want
    sc = score_group(answers, [0] * len(answers))
    assert (sc.majority, sc.majority_count) == want
    assert sc.discrete == tuple(1.0 if a == want[0] else 0.0 for a in answers)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "10", "9", ""]), min_size=1, max_size=9))
def test_majority_is_the_first_seen_of_the_most_frequent(answers):
    assert majority_vote(answers) == first_seen_majority(answers)
    assert majority_vote(list(reversed(answers)))[1] == first_seen_majority(answers)[1]


def test_empty_vote_is_an_error():
    with pytest.raises(ValueError, match="at least one answer"):
        majority_vote([])
