"""MathVista: what extraction hands to the score (the ``extracted`` column of a run), and lmms-eval's
normalisation of it, case by case."""

from __future__ import annotations

from evolmm_lib.evaluation import mathvista
from evolmm_lib.evaluation.mathvista import normalize_extracted_answer as norm

MC = {"pid": "9", "question": "Which one?", "choices": ["A. dog", "B. cat"], "answer": "B. cat",
      "question_type": "multi_choice", "answer_type": "text", "precision": None, "query": "Hint: pick.\nWhich one?"}
FREE = {"pid": "8", "question": "How many?", "choices": None, "answer": "7", "question_type": "free_form",
        "answer_type": "integer", "precision": None, "query": "Hint: count.\nHow many?"}


class RecordingJudge:
    """Stands in for the judge endpoint: records what it is asked, answers a fixed text."""

    def __init__(self):
        self.asked = []

    def extract(self, question, response):
        self.asked.append((question, response))
        return "judged"


def test_a_response_equal_to_a_choice_is_taken_as_it_is():
    assert mathvista.extract(MC, "B. cat") == "B. cat"  # the rule path, not the letter the text starts with
    assert mathvista.extract(dict(MC, choices=["3", "5", "7"], answer="7"), "it must be 7") == "7"
    assert mathvista.extract(FREE, "7") == "7" and mathvista.extract(FREE, "about 7") == "7"


def test_the_judge_is_asked_with_the_query():
    judge = RecordingJudge()
    assert mathvista.extract(MC, "no idea", judge=judge) == "judged"
    no_query = {k: v for k, v in MC.items() if k != "query"}
    mathvista.extract(no_query, "still no idea", judge=judge)
    assert judge.asked == [(MC["query"], "no idea"), (MC["question"], "still no idea")]
    assert mathvista.extract(MC, "B. cat", judge=judge) == "B. cat" and len(judge.asked) == 2  # rule path first


def test_normalisation_cases():
    assert norm("(B)", ["x", "y"], "multi_choice", "text", None) == "y"
    assert norm("(b)", ["x", "y"], "multi_choice", "text", None) == "y"
    assert norm(" 2 ", ["22", "2"], "multi_choice", "text", None) == "2"  # stripped before the edit distance
    assert norm(2, ["2", "Nonex"], "multi_choice", "text", None) == "2"  # a non-text extraction as its text
    assert norm("7.0", [], "free_form", "integer", None) == "7"
    assert norm("2.7", [], "free_form", "float", 0) == "3.0" and norm("2.74", [], "free_form", "float", 1) == "2.7"
    assert norm([7, 9], [], "free_form", "list", None) == "[7, 9]"
    assert norm(5, [], "free_form", "text", None) == 5  # other answer types pass through untouched


def test_score_edge_records():
    assert mathvista.score(dict(MC, choices=[]), "B. cat") == 0.0  # a multiple-choice record without choices
    assert mathvista.score(dict(MC, choices=None), "B. cat") == 0.0
    floats = dict(FREE, answer_type="float", answer="3.0", precision=None)
    assert mathvista.score(floats, "2.7") == 1.0  # no precision: rounded to a whole number
    assert mathvista.score(dict(FREE, answer=None), "7") == 0.0 and mathvista.score(FREE, "7") == 1.0
