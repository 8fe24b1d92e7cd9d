"""Notebook helpers in evolmm_lib.analysis, checked against hand-computed values."""

from __future__ import annotations

import math

import pytest

from evolmm_lib import analysis


def test_partitions_of_five():
    parts = list(analysis.partitions(5))
    assert parts == [(5,), (4, 1), (3, 2), (3, 1, 1), (2, 2, 1), (2, 1, 1, 1), (1, 1, 1, 1, 1)]
    assert len(list(analysis.partitions(8))) == 22


def test_reward_vs_agreement_table_values():
    rows = {r["partition"]: r for r in analysis.reward_vs_agreement_table(5, gamma=0.7)}
    r = rows["4+1"]
    assert r["agreement"] == pytest.approx(0.8)
    assert r["majority_continuous"] == pytest.approx(0.8 ** 0.7)
    assert r["minority_continuous"] == pytest.approx(0.2 ** 0.7)
    assert r["mean_continuous"] == pytest.approx((4 * 0.8 ** 0.7 + 0.2 ** 0.7) / 5)
    assert r["mean_discrete"] == pytest.approx(0.8)
    h = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2))
    assert r["entropy"] == pytest.approx(h)
    assert r["proposer_reward"] == pytest.approx(math.exp(-(h - 0.9) ** 2 / (2 * 0.35 ** 2)))
    assert rows["5"]["mean_continuous"] == pytest.approx(1.0)
    assert rows["1+1+1+1+1"]["entropy"] == pytest.approx(math.log(5))
    # the band-pass prefers a middling split over unanimity or chaos
    best = max(rows.values(), key=lambda x: x["proposer_reward"])
    assert best["partition"] == "3+1+1"


def test_question_stats_and_distinct_n():
    qs = ["What is angle C?", "What is angle C?", "How many red circles are there?"]
    s = analysis.question_stats(qs)
    assert s["questions"] == 3 and s["unique_questions"] == 2
    assert s["min_words"] == 4 and s["max_words"] == 6
    assert analysis.distinct_n(qs, 1) == pytest.approx(10 / 14)
    assert analysis.distinct_n(qs, 2) == pytest.approx(8 / 11)
    assert analysis.distinct_n(["one"], 2) == 0.0
    with pytest.raises(ValueError):
        analysis.question_stats([])


def test_consistency_row_and_histogram():
    comps = ["<answer>5</answer>", "It is 5.", "<answer> 5 </answer>", "<answer>7</answer>", ""]
    row = analysis.consistency_row(comps)
    # untagged "It is 5." falls back to its last line ("it is 5"), the empty one to "unknown"
    assert row["majority_answer"] == "5" and row["agreement"] == pytest.approx(0.4)
    assert row["distinct_answers"] == 4
    assert analysis.answer_histogram(["5", "7", "5"]) == [("5", 2), ("7", 1)]
    hs, rs = analysis.band_pass_curve(0.9, 0.35, h_max=2.0, points=201)
    assert max(rs) == pytest.approx(1.0) and hs[rs.index(max(rs))] == pytest.approx(0.9)
