"""EvoLMM wrapper post-processing, the rule-based extractor and the lmms-eval prompts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from evolmm_lib.evaluation import build_prompt, postprocess_response, rule_extract
from evolmm_lib.evaluation.extraction import first_boxed, levenshtein


def test_postprocess_prefers_answer_tag_then_boxed_then_text():
    assert postprocess_response("think <answer> 42 </answer> \\boxed{7}") == "42"
    assert postprocess_response("so \\boxed{\\frac{1}{2}} and \\boxed{3}") == "\\frac{1}{2}"
    assert postprocess_response("  plain text \n") == "plain text"
    assert postprocess_response("<answer>unclosed") == "<answer>unclosed"
    assert postprocess_response("\\boxed{unbalanced") == "unbalanced"
    assert postprocess_response(None) == ""


def test_first_boxed_balances_braces():
    assert first_boxed("x \\boxed{a{b}c} y") == "a{b}c"
    assert first_boxed("none") is None


def test_rule_extract():
    assert rule_extract("The answer is (B).", ["x", "y", "z"]) == "B"
    assert rule_extract("C. because", ["x", "y", "z"]) == "C"
    assert rule_extract("I think it is tokyo", ["osaka", "tokyo"]) == "tokyo"
    assert rule_extract("Total: 1,250 dollars", None, numeric=True) == "1250"
    assert rule_extract("Answer: blue", None) == "blue"
    assert rule_extract("", ["a"]) == ""


def test_levenshtein():
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3 and levenshtein("a", "a") == 0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.lists(st.text(max_size=10), max_size=5), st.booleans())
def test_extractors_never_raise(text, choices, numeric):
    assert isinstance(postprocess_response(text), str)
    assert isinstance(rule_extract(text, choices or None, numeric), str)


def test_prompts_are_lmms_eval_prompts():
    assert build_prompt("chartqa", {"question": "How many?"}) == "How many?\nAnswer the question with a single word."
    assert build_prompt("mathvista", {"query": "Hint: x\nQuestion: y"}) == "Hint: x\nQuestion: y"
    assert build_prompt("mathverse", {"query_wo": "Q wo"}) == "Q wo"
    assert build_prompt("mathvision", {"question": "Q?", "options": []}) == (
        'Please solve the problem step by step and put your answer in one "\\boxed{}".Q?')
    assert build_prompt("mathvision", {"question": "Q?", "options": ["1", "2"]}) == (
        'Please solve the problem step by step and put your answer in one "\\boxed{}".Q?\nChoices: A. 1\nB. 2'
        "\nAnswer the question with the option's letter from the given choices directly.")
    assert build_prompt("ai2d", {"question": "Q?", "options": ["x", "y"]}) == (
        "Q?\nA. x\nB. y\nAnswer with the option's letter from the given choices directly.")


def test_judge_through_an_openai_compatible_endpoint(monkeypatch):
    """A local stub of /v1/chat/completions: the judge's extraction replaces the rule-based one."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from evolmm_lib.evaluation import Judge, score_response

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers.get("Authorization"), body["messages"][0]["content"]))
            reply = "1" if "Judgement" in body["messages"][0]["content"] else "C"
            data = json.dumps({"choices": [{"message": {"content": reply}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MY_KEY", "sk-test")
    judge = Judge(f"http://127.0.0.1:{server.server_port}/v1", "any-model", api_key_env="MY_KEY")
    doc = {"pid": "9", "question": "q", "choices": ["3", "5", "7"], "answer": "7", "question_type": "multi_choice",
           "answer_type": "text", "precision": None, "query": "Question: q"}
    try:
        assert score_response("mathvista", doc, "it must be the largest one", judge=judge) == 1.0
        assert score_response("mathvista", doc, "it must be the largest one") == 0.0  # rule-based: no letter
        free = {"question": "q", "answer": "12", "question_type": "free-form", "query_wo": "q"}
        assert score_response("mathverse", free, "twelve", judge=judge) == 1.0
    finally:
        server.shutdown()
    assert seen[0][0] == "/v1/chat/completions" and seen[0][1] == "Bearer sk-test"
    assert Judge("http://127.0.0.1:9/v1", "m", timeout=1).extract("q", "r") == ""  # unreachable: no raise
