"""Extraction details: edit distance against a plain reference, the rule extractor's tail and choice matching,
and the judge's HTTP request (body, headers, URL, timeout) as a local stub endpoint receives it."""

from __future__ import annotations

import json
import threading
import time
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, HTTPServer

from hypothesis import given, settings
from hypothesis import strategies as st

from evolmm_lib.evaluation.extraction import Judge, levenshtein, rule_extract


def reference_distance(a: str, b: str) -> int:
    @lru_cache(maxsize=None)
    def d(i, j):
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
    return d(len(a), len(b))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abc", max_size=7), st.text(alphabet="abc", max_size=7))
def test_levenshtein_is_the_edit_distance(a, b):
    assert levenshtein(a, b) == reference_distance(a, b) == levenshtein(b, a)


def test_levenshtein_edge_cases():
    assert levenshtein("", "") == 0 and levenshtein("abc", "ac") == 1 and levenshtein("ac", "abc") == 1


def test_rule_extract_tail_and_choices():
    assert rule_extract("about 7 apples") == "about 7 apples"  # not numeric unless asked
    assert rule_extract("about 7 apples", numeric=True) == "7"
    assert rule_extract("7 is it. Answer: seven", numeric=True) == "7"  # no number in the tail: the text's
    assert rule_extract("Answer: BOX") == "BOX" and rule_extract("Answer: XRAY") == "XRAY"
    assert rule_extract("Answer: **bold**") == "bold" and rule_extract("Answer: $12$.") == "12"
    assert rule_extract("Light Red", ["red", "light red"]) == "light red"  # exact text, any case: the choice
    assert rule_extract("I think tokyo", ["", "tokyo"]) == "tokyo"  # a blank choice is never "contained"


class _Stub(BaseHTTPRequestHandler):
    seen: list = []
    delay = 0.0

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.seen.append((self.path, dict(self.headers), body))
        time.sleep(_Stub.delay)
        data = json.dumps({"choices": [{"message": {"content": " 1 "}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def test_judge_request_and_timeout(monkeypatch):
    _Stub.seen = []  # fresh for this run (a process forked after an earlier run keeps the class's list)
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("JUDGE_KEY", "sk-x")
    url = f"http://127.0.0.1:{server.server_port}/v1/"
    try:
        judge = Judge(url, "judge-model", api_key_env="JUDGE_KEY")
        assert judge.extract("q", "r") == "1" and judge.match("q", "a", "r") is True
        Judge(url + "X/", "m").extract("q", "r")  # only the trailing slash is dropped from the base URL
        _Stub.delay = 1.5
        assert Judge(url, "judge-model", timeout=0.3).extract("q", "r") == ""  # too slow: no answer, no raise
    finally:
        _Stub.delay = 0.0
        server.shutdown()
    (p1, h1, b1), (p2, _, b2) = _Stub.seen[:2]
    assert p1 == p2 == "/v1/chat/completions"
    assert h1["Content-Type"] == "application/json" and h1["Authorization"] == "Bearer sk-x"
    assert set(b1) == {"model", "temperature", "max_tokens", "messages"}
    assert (b1["model"], b1["temperature"], b1["max_tokens"], b2["max_tokens"]) == ("judge-model", 0, 256, 4)
    assert b1["messages"][0]["role"] == "user" and b1["messages"][0]["content"].startswith("Extract the final answer")
    assert len(b1["messages"]) == 1 and b1["messages"][0]["content"] == (
        "Extract the final answer from the model response to the question. Reply with the answer only: an option "
        "letter for multiple choice, else a number, word, phrase or list.\n\nQuestion: q\n\nModel response: r\n\n"
        "Extracted answer:")
    assert b2["messages"][0]["content"] == (
        "Judge whether the model response gives the same final answer as the standard answer. Reply 1 if "
        "equivalent, 0 otherwise, and nothing else.\n\nQuestion: q\nStandard answer: a\nModel response: r\n"
        "Judgement:")
    assert _Stub.seen[2][0] == "/v1/X/chat/completions"
    assert Judge("http://127.0.0.1:9/v1", "m", timeout=1).match("q", "a", "r") is False  # unreachable: no match
