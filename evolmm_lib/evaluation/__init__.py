"""Benchmark evaluation as the paper does it (lmms-eval prompts, greedy decoding, lmms-eval scoring).

One module per benchmark holds its prompt builder and scorer side by side (``chartqa``, ``mathvista``,
``mathvision``, ``mathverse``, ``ai2d``, ``infovqa``, ``scienceqa``, ``mmmu``); ``datasets`` loads hub sets and
local ``data.jsonl`` folders; ``extraction`` post-processes responses as the EvoLMM wrapper does;
``runner.evaluate`` generates and scores; ``contamination`` guards against training on the test images.
"""

from __future__ import annotations

from types import ModuleType

from . import ai2d, chartqa, infovqa, mathverse, mathvision, mathvista, mmmu, scienceqa
from .extraction import Judge, postprocess_response, rule_extract

BENCHMARKS: dict[str, ModuleType] = {
    "chartqa": chartqa,
    "mathvista": mathvista,
    "mathvision": mathvision,
    "mathverse": mathverse,
    "ai2d": ai2d,
    "infovqa": infovqa,
    "scienceqa": scienceqa,
    "mmmu": mmmu,
}
"""Benchmark name → module with ``HUB``, ``FIELDS``, ``MAX_NEW_TOKENS``, ``build_prompt``, ``extract``, ``score``."""

ALIASES = {"mathvista_testmini": "mathvista", "mathvision_testmini": "mathvision", "mathvision_test": "mathvision",
           "mathverse_testmini": "mathverse", "infovqa_val": "infovqa", "scienceqa_img": "scienceqa",
           "mmmu_val": "mmmu"}


def benchmark_module(name: str) -> ModuleType:
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}: expected one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[key]


def build_prompt(benchmark: str, doc: dict) -> str:
    """The user text lmms-eval sends for ``doc`` (the image goes before it)."""
    return benchmark_module(benchmark).build_prompt(doc)


def score_response(benchmark: str, doc: dict, response: str, judge: Judge | None = None) -> float:
    """Score one response as lmms-eval does for ``benchmark`` (1.0/0.0; ANLS in [0, 1] for InfoVQA).

    ``response`` is what the harness receives, i.e. already post-processed by
    :func:`postprocess_response` when it comes from the kit's runner. Never raises on arbitrary text.
    """
    module = benchmark_module(benchmark)
    try:
        return float(module.score(doc, "" if response is None else str(response), judge=judge))
    except (KeyError, TypeError) as e:  # a malformed record is the caller's error: name it
        raise ValueError(f"{benchmark}: record {doc.get('id', doc.get('pid', '?'))!r} cannot be scored: {e!r}") from e


def __getattr__(name):  # lazy: keep ``score_response`` importable without loading torch
    if name == "evaluate":
        from .runner import evaluate

        return evaluate
    raise AttributeError(name)


__all__ = ["BENCHMARKS", "Judge", "benchmark_module", "build_prompt", "evaluate", "postprocess_response",
           "rule_extract", "score_response"]
