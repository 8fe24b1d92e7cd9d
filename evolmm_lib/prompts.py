"""The two role prompts and their parsers (paper §3.1; official ``src/train.py``).

The prompt strings are the official ones character for character, including the indentation the
official code leaves inside them (it builds them from indented triple-quoted strings and only
strips the ends): a reproduction should show the backbone the same tokens.
"""

from __future__ import annotations

_IND = "\n" + " " * 16

SYSTEM_PROMPT = "You are a helpful assistant."
"""Qwen2.5-VL-Instruct's default system turn: its chat template adds it when a conversation has none,
and lmms-eval's Qwen2.5-VL model passes it explicitly (the evaluation does the same)."""

PROPOSER_PROMPT = _IND.join(
    [
        "You are a Question Proposer.",
        "Given the IMAGE, generate **one** short-answer question",
        "that can be answered from the image alone (no external knowledge). Avoid ambiguity, avoid",
        "trivia, and avoid overly simple counting if possible.",
        "Rules:",
        "- Output exactly in XML with two tags:",
        "  <question> ... </question>",
        "  <rationale>Briefly explain why this question is non-trivial but solvable.</rationale>",
        "- Do NOT include the answer.",
        "- Keep the question 1–2 sentences, clear and specific.",
        "- If numeric, make sure units/context are clear.",
        "Only output the two XML tags, nothing else.",
    ]
)
"""Official Proposer instruction: one image-grounded short-answer question, no answer."""

_SOLVER_HEAD = _IND.join(
    [
        "You are a precise Vision-Language Solver.",
        "Task: Answer the user's question using ONLY the provided IMAGE.",
        "- Think briefly, then provide a short final answer (number/word/phrase).",
        "- Wrap ONLY the final answer in <answer>...</answer>.",
        "- Do not include steps, just the final answer in the tag.",
        "Question: ",
    ]
)

FALLBACK_QUESTION = "What is the most prominent value shown in the image?"
"""Official question used when the Proposer's output is empty."""


def build_proposer_prompt() -> str:
    """The Proposer's user text (the image goes before it in the chat message)."""
    return PROPOSER_PROMPT


def build_solver_prompt(question: str) -> str:
    """The Solver's user text for ``question`` (official template, ends stripped)."""
    return (_SOLVER_HEAD + str(question)).strip()


def chat_messages(prompt: str) -> list[dict]:
    """One user turn holding the image placeholder then the text, as the official code renders it."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]


def strip_tags(text: str, tag: str) -> str | None:
    """Text between the first ``<tag>`` and the next ``</tag>``, stripped; None if either is missing."""
    lt, rt = f"<{tag}>", f"</{tag}>"
    if lt in text and rt in text:
        return text.split(lt, 1)[1].split(rt, 1)[0].strip()
    return None


def parse_question(proposer_output: str) -> str:
    """Question from a Proposer output: ``<question>`` text, else the whole output (official).

    Newlines become spaces; an empty result falls back to :data:`FALLBACK_QUESTION`.
    """
    text = str(proposer_output or "")
    question = strip_tags(text, "question") or text.strip()
    question = question.replace("\n", " ").strip()
    return question or FALLBACK_QUESTION


def parse_answer(solver_output: str) -> str:
    """Answer from a Solver output: first ``<answer>`` text, else last non-empty line, else ``unknown``."""
    text = str(solver_output or "")
    tagged = strip_tags(text, "answer")
    if tagged is not None:
        return tagged
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown"
