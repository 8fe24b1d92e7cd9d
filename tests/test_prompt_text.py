"""The role prompts and the system prompt, pinned whole (a word changed in the middle fails here, fast)."""

from __future__ import annotations

from evolmm_lib.prompts import FALLBACK_QUESTION, PROPOSER_PROMPT, SYSTEM_PROMPT, build_proposer_prompt, build_solver_prompt

INDENT = "\n" + " " * 16  # the official strings keep the indentation of their triple-quoted source

PROPOSER = INDENT.join([
    "You are a Question Proposer.",
    "Given the IMAGE, generate **one** short-answer question",
    "that can be answered from the image alone (no external knowledge). Avoid ambiguity, avoid",
    "trivia, and avoid overly simple counting if possible.",
    "Rules:",
    "- Output exactly in XML with two tags:",
    "  <question> ... </question>",
    "  <rationale>Briefly explain why this question is non-trivial but solvable.</rationale>",
    "- Do NOT include the answer.",
    "- Keep the question 1\u20132 sentences, clear and specific.",
    "- If numeric, make sure units/context are clear.",
    "Only output the two XML tags, nothing else.",
])

SOLVER_HEAD = INDENT.join([
    "You are a precise Vision-Language Solver.",
    "Task: Answer the user's question using ONLY the provided IMAGE.",
    "- Think briefly, then provide a short final answer (number/word/phrase).",
    "- Wrap ONLY the final answer in <answer>...</answer>.",
    "- Do not include steps, just the final answer in the tag.",
    "Question: ",
])


def test_system_prompt_is_qwen_default():
    assert SYSTEM_PROMPT == "You are a helpful assistant."


def test_proposer_prompt_whole_string():
    assert PROPOSER_PROMPT == PROPOSER
    assert build_proposer_prompt() == PROPOSER


def test_solver_prompt_whole_string():
    assert build_solver_prompt("How many bars are red?") == SOLVER_HEAD + "How many bars are red?"
    # the ends are stripped after the question is put in (official): surrounding blanks go, inner text stays
    assert build_solver_prompt("  two  words \n") == SOLVER_HEAD + "  two  words"
    assert build_solver_prompt("") == SOLVER_HEAD.rstrip()
    assert build_solver_prompt(7) == SOLVER_HEAD + "7"


def test_fallback_question_text():
    assert FALLBACK_QUESTION == "What is the most prominent value shown in the image?"


def test_rendered_chat_of_both_roles(tiny_backbone):
    """What the tokenizer sees: the system turn, the image placeholder, then the role's text, then the
    assistant header (Qwen2.5-VL's template adds the default system turn when none is given)."""
    from evolmm_lib.rollout import render_prompt

    vision = "<|vision_start|><|image_pad|><|vision_end|>"
    for text in (PROPOSER, SOLVER_HEAD + "Q?"):
        want = (f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{vision}{text}<|im_end|>\n"
                "<|im_start|>assistant\n")
        assert render_prompt(tiny_backbone, text) == want
        assert render_prompt(tiny_backbone, text, system=SYSTEM_PROMPT) == want
