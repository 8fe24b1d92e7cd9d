"""The benchmark registry: one :class:`Task` per benchmark, resolved once by :func:`get_task`.

A task is described as lmms-eval describes one in its YAML: where the data lives, the prompt, the
generation settings and the scorer, side by side. Everything that is data sits in the table below;
the per-benchmark modules (``chartqa``, ``mathvista``, ...) hold only code: ``build_prompt(doc)``,
``extract(doc, response, judge)`` and ``score(doc, extracted, judge)``.

Versions: scoring follows the lmms-eval 0.5 the official repository vendors (``Evaluation/lmms-eval``);
where lmms-eval 0.7.3 scores differently the task says so in ``differs_from_0_7_3`` (and
``tests/fixtures/lmms_eval/README.md`` lists each difference).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from ..errors import UserError
from . import ai2d, chartqa, infovqa, mathverse, mathvision, mathvista, mmmu, scienceqa

HARNESSES = ("0.5", "0.7.3")
DEFAULT_HARNESS = "0.5"
"""Scoring rules of the lmms-eval the official repository vendors (0.5); "0.7.3" is the current release."""


class UnknownBenchmarkError(UserError, ValueError):
    """A benchmark name that is not in :data:`TASKS` (nor an alias)."""


@dataclass(frozen=True)
class Task:
    """One benchmark: data location, prompt, generation budget and scorer (an lmms-eval task, as data)."""

    name: str
    lmms_eval_task: str
    """The lmms-eval task reproducing the paper's number (a task, never a group such as ``mathvista_testmini``)."""
    hub_path: str
    hub_split: str
    fields: tuple[str, ...]
    """Record fields the prompt and the scorer read (checked when records load)."""
    max_new_tokens: int
    """Greedy generation budget: the task YAML's ``generation_kwargs.max_new_tokens`` in lmms-eval 0.5; the
    math tasks allow 16384 there, the kit caps them at 1024 (``max_new_tokens=`` / ``--max-new-tokens`` for more)."""
    code: ModuleType
    """Module with ``build_prompt(doc)``, ``extract(doc, response, judge)`` and
    ``score(doc, extracted, judge, harness)``."""
    hub_name: str | None = None
    local_folder: str | None = None
    """Folder under ``$EVOLMM_BENCHMARKS_DIR`` holding a real sample as ``data.jsonl`` + images."""
    aliases: tuple[str, ...] = ()
    differs_from_0_7_3: str = ""
    """Where lmms-eval 0.7.3 scores or generates differently from the vendored 0.5 (empty: nowhere)."""

    def build_prompt(self, doc: dict) -> str:
        """The user text lmms-eval sends for ``doc`` (the image goes before it)."""
        return self.code.build_prompt(doc)

    def grade(self, doc: dict, response: str, judge=None, harness: str = DEFAULT_HARNESS) -> tuple[object, float]:
        """``(extracted answer, score)`` of one post-processed response: extract once, score the extraction.

        ``harness``: the lmms-eval version whose scoring rules apply (:data:`HARNESSES`). Never raises on
        arbitrary text; a record lacking a field the scorer needs is a ``ValueError`` naming the record.
        """
        if harness not in HARNESSES:
            raise ValueError(f"harness must be one of {HARNESSES}, got {harness!r}")
        response = "" if response is None else str(response)
        try:
            extracted = self.code.extract(doc, response, judge)
            return extracted, float(self.code.score(doc, extracted, judge, harness=harness))
        except (KeyError, TypeError) as e:
            raise ValueError(f"{self.name}: record {doc.get('id', doc.get('pid', '?'))!r} cannot be scored: "
                             f"{e!r}") from e


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("chartqa", "chartqa", "lmms-lab/ChartQA", "test", ("question", "answer"), 16, chartqa,
         local_folder="chartqa_test_sample"),
    Task("mathvista", "mathvista_testmini_format", "AI4Math/MathVista", "testmini",
         ("pid", "question", "choices", "answer", "question_type", "answer_type", "query"), 1024, mathvista,
         local_folder="mathvista_testmini_annotations", aliases=("mathvista_testmini",)),
    Task("mathvision", "mathvision_testmini", "MathLLMs/MathVision", "testmini", ("question", "options", "answer"),
         1024, mathvision, local_folder="mathvision_testmini", aliases=("mathvision_testmini", "mathvision_test"),
         differs_from_0_7_3="a LaTeX answer's value may use math functions and constants (sqrt, pi, e, log, sin, "
                            "...): 0.5 evaluates it with Python's math names in scope, 0.7.3 without them"),
    Task("mathverse", "mathverse_testmini", "CaraJ/MathVerse-lmmseval", "testmini",
         ("question", "answer", "question_type", "query_wo"), 1024, mathverse, hub_name="testmini",
         aliases=("mathverse_testmini",)),
    Task("ai2d", "ai2d", "lmms-lab/ai2d", "test", ("question", "options", "answer"), 16, ai2d),
    Task("infovqa", "infovqa_val", "lmms-lab/DocVQA", "validation", ("question", "answers"), 32, infovqa,
         hub_name="InfographicVQA", aliases=("infovqa_val",)),
    Task("scienceqa", "scienceqa_img", "lmms-lab/ScienceQA", "test", ("question", "choices", "answer"), 16,
         scienceqa, hub_name="ScienceQA-IMG", aliases=("scienceqa_img",)),
    Task("mmmu", "mmmu_val", "lmms-lab/MMMU", "validation", ("id", "question", "options", "answer", "question_type"),
         16, mmmu, aliases=("mmmu_val",),
         differs_from_0_7_3="open questions: 0.5 keeps only the first parsed candidate and compares it character by "
                            "character (so they score 0), 0.7.3 compares every candidate; budget 16 new tokens "
                            "(0.7.3: 128)"),
)}
"""Benchmark name → :class:`Task`."""

_BY_ALIAS = {alias: t for t in TASKS.values() for alias in (t.name, *t.aliases)}


def get_task(benchmark: str | Task) -> Task:
    """The :class:`Task` of a benchmark name or alias (a Task passes through)."""
    if isinstance(benchmark, Task):
        return benchmark
    task = _BY_ALIAS.get(str(benchmark).lower())
    if task is None:
        raise UnknownBenchmarkError(f"unknown benchmark {benchmark!r}: expected one of {', '.join(TASKS)}")
    return task
