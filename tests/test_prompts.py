"""Prompts are the official strings; parsers follow the official fallbacks on malformed output."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evolmm_lib.prompts import (FALLBACK_QUESTION, PROPOSER_PROMPT, build_solver_prompt, parse_answer,
                                parse_question, strip_tags)


def test_proposer_prompt_official_text():
    assert PROPOSER_PROMPT.startswith("You are a Question Proposer.\n                Given the IMAGE")
    assert "<question> ... </question>" in PROPOSER_PROMPT and "Do NOT include the answer." in PROPOSER_PROMPT
    assert PROPOSER_PROMPT.endswith("Only output the two XML tags, nothing else.")


def test_solver_prompt_wraps_question():
    p = build_solver_prompt("How many bars?")
    assert p.startswith("You are a precise Vision-Language Solver.")
    assert "Wrap ONLY the final answer in <answer>...</answer>." in p
    assert p.endswith("Question: How many bars?")


@pytest.mark.parametrize("raw, expected", [
    ("<question>What is the tallest bar?</question><rationale>r</rationale>", "What is the tallest bar?"),
    ("<question>\nTwo\nlines?\n</question>", "Two lines?"),
    ("no tags at all\nsecond line", "no tags at all second line"),  # official: whole output
    ("<question>unterminated", "<question>unterminated"),
    ("", FALLBACK_QUESTION),
    ("   \n ", FALLBACK_QUESTION),
    ("<question></question>", "<question></question>"),  # empty tag -> whole output (official `or`)
])
def test_parse_question(raw, expected):
    assert parse_question(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("I think <answer> 42 </answer> then <answer>7</answer>", "42"),
    ("reasoning\nfinal: 12\n\n", "final: 12"),
    ("", "unknown"),
    ("\n \n", "unknown"),
    ("<answer></answer>", ""),  # a present-but-empty tag stays empty, as in the official code
])
def test_parse_answer(raw, expected):
    assert parse_answer(raw) == expected


def test_very_long_output_is_handled():
    long = "word " * 20000
    assert parse_answer(long) == long.strip()
    assert parse_question(long + "\n") == long.strip()
    assert strip_tags("<answer>" + long + "</answer>", "answer") == long.strip()


@given(st.text(max_size=300))
def test_parsers_never_raise(text):
    assert isinstance(parse_question(text), str) and parse_question(text)
    assert isinstance(parse_answer(text), str)
