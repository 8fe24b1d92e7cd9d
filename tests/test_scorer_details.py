"""Small scorer details the parity fixtures leave open: ChartQA percentages, AI2D's exact match (numpy string
semantics), ANLS of empty strings, a single InfoVQA answer given as text, the ScienceQA and InfoVQA prompts."""

from __future__ import annotations

import pytest

from evolmm_lib.evaluation import ai2d, chartqa, infovqa, scienceqa


def test_chartqa_percent_is_a_hundredth():
    assert chartqa._to_float("50%") == 0.5 and chartqa._to_float("7") == 7.0
    assert chartqa._to_float("5X%") is None and chartqa._to_float("abc") is None
    assert not chartqa.relaxed_correctness("5X%", "0.05")


@pytest.mark.parametrize("prediction, reference, same", [
    ("b", "B", True), ("B.", "b", True), ("B\x00", "B", True),   # case, punctuation, trailing NUL ignored
    ("B ", "B", False), ("\x00B", "B", False), ("BX", "B", False), ("ss", "\u00df", False),
])
def test_ai2d_exact_match(prediction, reference, same):
    assert ai2d.exact_match(prediction, reference) is same


def test_anls_of_empty_strings_and_a_text_answer():
    assert infovqa.anls([""], "") == 1.0
    assert infovqa.anls(["abc"], "") == 0.0
    doc = {"question": "q", "answers": "seven"}
    assert infovqa.score(doc, "seven") == 1.0 and infovqa.score(doc, "s") == 0.0


def test_infovqa_and_scienceqa_prompts():
    assert infovqa.build_prompt({"question": "Q?"}) == "Q?\nAnswer the question using a single word or phrase."
    doc = {"question": "Q?", "choices": ["x", "y", "z"], "hint": ""}
    tail = "Q?\nA. x\nB. y\nC. z\nAnswer with the option's letter from the given choices directly."
    assert scienceqa.build_prompt(doc) == tail
    assert scienceqa.build_prompt(dict(doc, hint="It rains.")) == "Context: It rains.\n" + tail
    assert scienceqa.build_prompt({"question": "Q?", "choices": ["x"]}) == (
        "Q?\nA. x\nAnswer with the option's letter from the given choices directly.")


def test_mmmu_prompts():
    from evolmm_lib.evaluation import mmmu

    mc = {"question": "Q?", "options": "['x', 'y']", "question_type": "multiple-choice"}
    assert mmmu.build_prompt(mc) == "Q?\nA. x\nB. y\n\nAnswer with the option's letter from the given choices directly."
    assert mmmu.build_prompt(dict(mc, options=["x"])) == (
        "Q?\nA. x\n\nAnswer with the option's letter from the given choices directly.")
    assert mmmu.build_prompt({"question": "Q?", "options": "[]", "question_type": "open"}) == (
        "Q?\n\nAnswer the question using a single word or phrase.")


def test_chartqa_five_percent_is_still_right():
    assert chartqa.relaxed_correctness("105", "100") and chartqa.relaxed_correctness("95", "100")
    assert not chartqa.relaxed_correctness("105.1", "100")
