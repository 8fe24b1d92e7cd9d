"""Benchmark answer extraction when a response names more than one choice.

The kit's rule extractor (offline stand-in for lmms-eval's GPT extraction) returns a choice only when the
response names exactly one; the ported lmms-eval parsers (MMMU, MathVision) keep their own rule: the choice
named last wins.
"""

from __future__ import annotations

import pytest

from evolmm_lib.evaluation import score_response
from evolmm_lib.evaluation.extraction import rule_extract
from evolmm_lib.evaluation.mmmu import parse_multi_choice_response


@pytest.mark.parametrize("response, choices, want", [
    ("it is tokyo or osaka", ["osaka", "tokyo"], "it is tokyo or osaka"),   # two named: no single choice
    ("osaka, then tokyo", ["osaka", "tokyo", "kyoto"], "osaka, then tokyo"),
    ("The answer is red or blue.", ["red", "blue", "green"], "red or blue"),  # the stated tail, not a choice
    ("I think it is tokyo", ["osaka", "tokyo"], "tokyo"),                    # one named: that choice
    ("I think it is Tokyo", ["osaka", "tokyo"], "tokyo"),                    # found ignoring case
    ("B and C", ["x", "y", "z"], "B"),                                       # a leading letter decides first
    ("The answer is (C), not (B).", ["x", "y", "z"], "C"),
    ("The answer is D", ["x", "y", "z"], "D"),                               # D is not an option: the stated tail
])
def test_rule_extract_with_several_matching_choices(response, choices, want):
    assert rule_extract(response, choices) == want


def test_exact_choice_text_beats_containment():
    # the whole tail equals a choice: that choice, even though another choice is contained in the text too
    assert rule_extract("The answer is light red", ["red", "light red"]) == "light red"
    assert rule_extract("light red", ["red", "light red"]) == "light red"


def test_mathvista_two_choices_named_falls_to_the_closest_choice():
    """MathVista: no single choice → the text goes to lmms-eval's normalisation (closest choice by edit
    distance, the first of equals): naming two choices is scored by that rule, never by the first named."""
    doc = {"pid": "2", "question": "q", "choices": ["3", "5", "7"], "answer": "7",
           "question_type": "multi_choice", "answer_type": "text", "precision": None, "query": "q"}
    assert score_response("mathvista", doc, "7 or 5") == 0.0     # 5 and 7 equally near: the first choice, 5
    assert score_response("mathvista", dict(doc, answer="5"), "7 or 5") == 1.0
    assert score_response("mathvista", doc, "it must be 7") == 1.0      # one named
    assert score_response("mathvista", doc, "(C) 7 or (B) 5") == 1.0    # a bracketed letter decides first


@pytest.mark.parametrize("response, want", [
    ("(A) or (B)", "B"),
    ("(B) or (A)", "A"),
    ("A or B", "B"),
    ("B or A", "A"),
    ("C. or D.", "D"),
])
def test_mmmu_the_option_named_last_wins(response, want):
    assert parse_multi_choice_response(response, list("ABCD"), {}) == want


def test_mmmu_option_texts_the_one_named_last_wins():
    index2ans = {"A": "dog", "B": "cat"}
    assert parse_multi_choice_response("I think it is a cat and not a dog at all", ["A", "B"], index2ans) == "A"
    assert parse_multi_choice_response("I think it is a dog and not a cat at all", ["A", "B"], index2ans) == "B"
    doc = {"id": "validation_Art_1", "question": "q", "options": "['dog', 'cat']", "answer": "B",
           "question_type": "multiple-choice"}
    assert score_response("mmmu", doc, "(A) is wrong, so (B)") == 1.0
    assert score_response("mmmu", doc, "(B) is wrong, so (A)") == 0.0


def test_mathvision_the_last_boxed_answer_wins():
    doc = {"question": "q", "options": ["1", "2", "3", "4", "5"], "answer": "C"}
    assert score_response("mathvision", doc, "\\boxed{D} then \\boxed{C}") == 1.0
    assert score_response("mathvision", doc, "\\boxed{C} then \\boxed{D}") == 0.0
    assert score_response("mathvision", doc, "A or C") == 0.0


def test_mathverse_a_leading_letter_decides():
    doc = {"question": "q", "answer": "B", "question_type": "multi-choice", "query_wo": "q"}
    assert score_response("mathverse", doc, "B or C") == 1.0
    assert score_response("mathverse", doc, "C or B") == 0.0
    assert score_response("mathverse", doc, "Answer: (B) or (C)") == 1.0


def test_option_letter_benchmarks_with_two_letters():
    ai2d = {"question": "q", "options": ["x", "y", "z"], "answer": "1"}
    assert score_response("ai2d", ai2d, "B. or C.") == 1.0   # "X." at the start is the answer
    assert score_response("ai2d", ai2d, "C. B.") == 0.0
    assert score_response("ai2d", ai2d, "B or C") == 0.0      # no "X." form: the whole text is compared
    sqa = {"question": "q", "choices": ["x", "y"], "answer": 0, "hint": ""}
    assert score_response("scienceqa", sqa, "A. or B.") == 1.0
    assert score_response("scienceqa", sqa, "B. or A.") == 0.0
