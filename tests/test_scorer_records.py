"""The scorers of ChartQA, MathVista and MathVision on records kept inside the repository
(``tests/fixtures/scorer_records``), so these scorers are checked even where ``../shared`` is missing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from evolmm_lib.evaluation import TASKS, score_response

HERE = Path(__file__).parent / "fixtures" / "scorer_records"
RECORDS = json.loads((HERE / "records.json").read_text())
CASES = json.loads((HERE / "cases.json").read_text())
BENCHMARKS = ("chartqa", "mathvista", "mathvision")


def _doc(benchmark, rid):
    key = "pid" if benchmark == "mathvista" else "id"
    return next(d for d in RECORDS[benchmark] if str(d[key]) == str(rid))


def test_fixture_is_small_and_covers_both_outcomes():
    assert CASES["lmms_eval_version"] == "0.7.3"
    assert set(RECORDS) == set(BENCHMARKS)
    for b in BENCHMARKS:
        assert 5 <= len(RECORDS[b]) <= 20
        assert set(TASKS[b].fields) <= set(RECORDS[b][0])  # the upstream record layout the loader checks
        scores = Counter(c["score"] for c in CASES["cases"] if c["benchmark"] == b)
        assert scores[0.0] >= 10 and scores[1.0] >= 10, (b, scores)


@pytest.mark.parametrize("harness", ["0.5", "0.7.3"])
@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_scores_match_lmms_eval(benchmark, harness):
    """The records hold no LaTeX with math names, where the two harness versions differ: both score alike."""
    wrong = []
    for c in CASES["cases"]:
        if c["benchmark"] == benchmark:
            got = score_response(benchmark, _doc(benchmark, c["id"]), c["response"], harness=harness)
            if got != c["score"]:
                wrong.append((c["id"], c["response"], c["score"], got))
    assert wrong == []


def test_every_record_scores_its_own_gold_answer():
    for b in BENCHMARKS:
        for doc in RECORDS[b]:
            assert score_response(b, doc, str(doc["answer"])) == 1.0, (b, doc)
