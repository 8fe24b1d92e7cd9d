"""Answer normalisation and extraction: properties on arbitrary text, and what surrounds an answer after it."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolmm_lib.prompts import parse_answer
from evolmm_lib.rewards import normalize_answer, normalized_answers

BLANKS = st.text(alphabet=" \t\n\r\x0b\x0c", max_size=4)
TEXT = st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " \t\n,.", max_size=40)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_normalize_is_idempotent(text):
    once = normalize_answer(text)
    assert normalize_answer(once) == once


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_nothing_surrounds_a_normalised_answer(text):
    out = normalize_answer(text)
    assert out == out.strip()  # no blank at either end
    assert not out or (out[0] not in string.punctuation and out[-1] not in string.punctuation)
    assert "  " not in out and "\n" not in out and "\t" not in out and "," not in out
    assert out == out.lower()


@settings(max_examples=300, deadline=None)
@given(TEXT, BLANKS, BLANKS)
def test_surrounding_blanks_do_not_change_the_answer(text, before, after):
    assert normalize_answer(before + text + after) == normalize_answer(text)


@pytest.mark.parametrize("raw, want", [
    ("The answer .", "the answer"),    # a blank between the word and the final stop
    (" ( 42 ) ", "42"),                 # brackets with blanks inside
    ("'red' !", "red"),
    ("x . . .", "x"),
    ("1,000,000", "1000000"),
    ("A\u00a0B", "a b"),               # a no-break space is whitespace too
    ("- 3", "3"),                       # the sign is punctuation (official: stripped)
    ("3.5 %", "3.5"),
])
def test_normalize_examples(raw, want):
    assert normalize_answer(raw) == want


@settings(max_examples=200, deadline=None)
@given(TEXT, BLANKS, BLANKS)
def test_tagged_answer_is_the_text_between_the_tags_stripped(inner, before, after):
    """``<answer>`` text keeps no blank at its ends, and what stands around the tag never leaks in."""
    inner = inner.replace("<", "").replace(">", "")
    got = parse_answer(f"reasoning here<answer>{before}{inner}{after}</answer> trailing")
    assert got == inner.strip()
    assert normalized_answers([f"w w <answer>{before}{inner}{after}</answer>"]) == [normalize_answer(inner)]
