"""MMMU val (lmms-eval task ``mmmu_val``): MMMU's own rule-based parsing (option letters, open answers).

Port of lmms-eval's ``mmmu_process_results`` + ``evaluate_mmmu``. Harness versions differ on open
questions (see :func:`score`); lmms-eval 0.5 also gives MMMU 16 new tokens (0.7.3: 128). Where MMMU's
parser finds no option in a multiple-choice response it picks a random letter; the harness's global RNG
makes that run-dependent, here it is seeded by the record id (deterministic).
"""

from __future__ import annotations

import ast
import random
import re



def _options(doc: dict) -> list:
    opts = doc["options"]
    if isinstance(opts, str):  # the hub stores the list as its Python repr
        try:
            opts = ast.literal_eval(opts)
        except (ValueError, SyntaxError):
            return []
    return list(opts or [])


def build_prompt(doc: dict) -> str:
    if doc["question_type"] == "multiple-choice":
        choices = "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(_options(doc)))
        return f"{doc['question']}\n{choices}\n\nAnswer with the option's letter from the given choices directly."
    return f"{doc['question']}\n\nAnswer the question using a single word or phrase."


def parse_multi_choice_response(response: str, all_choices: list[str], index2ans: dict, rng=random) -> str:
    for char in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(char)
    response = " " + response + " "
    index_ans, ans_with_brack, candidates = True, False, []
    for choice in all_choices:
        if f"({choice})" in response:
            candidates.append(choice)
            ans_with_brack = True
    if not candidates:
        candidates = [c for c in all_choices if f"{c} " in response]
    if not candidates:
        candidates = [c for c in all_choices if f"{c}." in response]
    if not candidates and len(response.split()) > 5:
        for index, ans in index2ans.items():
            if str(ans).lower() in response.lower():
                candidates.append(index)
                index_ans = False
    if not candidates:
        return rng.choice(all_choices) if all_choices else ""
    if len(candidates) == 1:
        return candidates[0]
    if index_ans:
        starts = [response.rfind(f"({c})") if ans_with_brack else response.rfind(f" {c} ") for c in candidates]
    else:
        starts = [response.lower().rfind(str(index2ans[c]).lower()) for c in candidates]
    return candidates[starts.index(max(starts))]


def extract_numbers(string: str) -> list[str]:
    commas = re.findall(r"-?\b\d{1,3}(?:,\d{3})+\b", string)
    scientific = re.findall(r"-?\d+(?:\.\d+)?[eE][+-]?\d+", string)
    simple = re.findall(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])", string)
    return commas + scientific + simple


def normalize_str(string: str) -> list:
    string = string.strip()
    try:
        return [round(float(string.replace(",", "")), 2)]
    except ValueError:
        string = string.lower()
        return [" " + string, string + " "] if len(string) == 1 else [string]
    except OverflowError:
        return [string.lower()]


def parse_open_response(response: str) -> list:
    response_l = response.strip().strip(".").lower()
    subs = re.split(r"\.\s(?=[A-Z])|\n", response_l)
    indicators = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "]
    keys = []
    for i, resp in enumerate(subs):
        if i == len(subs) - 1:
            indicators = indicators + ["="]
        shortest = None
        for ind in indicators:
            if ind in resp:
                tail = resp.split(ind)[-1].strip()
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in [":", ",", ".", "!", "?", ";", ":", "'"]:
            keys.append(shortest)
    if not keys:
        keys = [response_l]
    preds = list(keys)
    for k in keys:
        preds.extend(extract_numbers(k))
    out = []
    for p in preds:
        out.extend(normalize_str(p))
    return list(set(out))


def eval_open(gold, preds: list) -> bool:
    norm = [a for g in gold for a in normalize_str(g)] if isinstance(gold, list) else normalize_str(gold)
    for pred in preds:
        if isinstance(pred, str):
            if any(isinstance(a, str) and a in pred for a in norm):
                return True
        elif pred in norm:
            return True
    return False


def extract(doc: dict, response: str, judge=None):
    response = str(response)
    if doc["question_type"] == "multiple-choice":
        opts = _options(doc)
        letters = [chr(65 + i) for i in range(len(opts))]
        return parse_multi_choice_response(response, letters, dict(zip(letters, opts)),
                                           random.Random(str(doc.get("id"))))
    return parse_open_response(response)


def score(doc: dict, pred, judge=None, harness: str = "0.5") -> float:
    """Multiple choice: the parsed letter equals the gold one. Open: ``harness="0.7.3"`` accepts any parsed
    candidate; ``"0.5"`` (the official repository's harness) keeps only the first candidate as a string and
    :func:`eval_open` then walks its characters, so an open question scores 0 unless the gold is empty."""
    gold = doc["answer"]
    if doc["question_type"] == "multiple-choice":
        return 1.0 if (pred in gold if isinstance(gold, list) else pred == gold) else 0.0
    if harness == "0.5":
        pred = str(pred[0]) if pred else ""
    return 1.0 if eval_open(gold, pred) else 0.0
