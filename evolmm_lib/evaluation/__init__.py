"""Benchmark evaluation as the paper does it (lmms-eval prompts, greedy decoding, lmms-eval scoring).

``tasks`` holds the registry (one :class:`~.tasks.Task` per benchmark: data, prompt, budget, scorer);
one module per benchmark holds its prompt builder, extractor and scorer (``chartqa``, ``mathvista``,
``mathvision``, ``mathverse``, ``ai2d``, ``infovqa``, ``scienceqa``, ``mmmu``); ``datasets`` loads hub
sets and local ``data.jsonl`` folders; ``extraction`` post-processes responses as the EvoLMM wrapper
does; ``runner.evaluate`` generates and scores; ``contamination`` guards against training on test images.
"""

from __future__ import annotations

from .extraction import Judge, postprocess_response, rule_extract
from .tasks import DEFAULT_HARNESS, TASKS, Task, UnknownBenchmarkError, get_task

BENCHMARKS = TASKS
"""Benchmark name → :class:`~.tasks.Task` (the registry lives in :mod:`.tasks`)."""


def build_prompt(benchmark: str, doc: dict) -> str:
    """The user text lmms-eval sends for ``doc`` (the image goes before it)."""
    return get_task(benchmark).build_prompt(doc)


def score_response(benchmark: str, doc: dict, response: str, judge: Judge | None = None,
                   harness: str = DEFAULT_HARNESS) -> float:
    """Score one response as lmms-eval does for ``benchmark`` (1.0/0.0; ANLS in [0, 1] for InfoVQA).

    ``response`` is what the harness receives, i.e. already post-processed by
    :func:`postprocess_response` when it comes from the kit's runner. ``harness``: "0.5" (the official
    repository's lmms-eval, default) or "0.7.3". Never raises on arbitrary text.
    """
    return get_task(benchmark).grade(doc, response, judge, harness)[1]


def __getattr__(name):  # lazy: keep ``score_response`` importable without loading torch
    if name == "evaluate":
        from .runner import evaluate

        return evaluate
    raise AttributeError(name)


__all__ = ["BENCHMARKS", "DEFAULT_HARNESS", "Judge", "TASKS", "Task", "UnknownBenchmarkError", "build_prompt",
           "evaluate", "get_task", "postprocess_response", "rule_extract", "score_response"]
