"""Notebook 06 in the chain, on the shipped warm start: the table it displays is the study it wrote."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import REPO

PARAMETERS = {"steps": 3, "eval_every": 3, "n_test": 20, "n_validation": 6}
"""A few self-evolution steps from the shipped warm start (no ``warmstart`` override: the default recipe)."""


class _Tables(HTMLParser):
    """The rows of every HTML table in a cell output, as lists of cell texts (header row included)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def displayed_tables(notebook: dict) -> list[list[dict]]:
    """Every DataFrame the executed notebook displayed, as a list of {column: text} rows."""
    tables = []
    for cell in notebook["cells"]:
        for out in cell.get("outputs", []):
            html = out.get("data", {}).get("text/html")
            if not html:
                continue
            parser = _Tables()
            parser.feed("".join(html))
            header, *rows = parser.rows
            tables.append([dict(zip(header[1:], row[1:])) for row in rows])  # drop the index column
    return tables


def _number(text: str) -> float:
    return float("nan") if text == "NaN" else float(text)


def _same(shown: str, value: float) -> bool:
    """The notebook rounds to 3 decimals; pandas may print fewer digits."""
    x = _number(shown)
    return (math.isnan(x) and math.isnan(value)) or abs(x - value) <= 5e-4 + 1e-12


def _mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    from evolmm_lib.notebook_chain import run_chain

    out = tmp_path_factory.mktemp("nb06")
    run_chain(out, only=["06"], parameters=PARAMETERS)
    (path,) = out.glob("06_*.ipynb")
    return json.loads(path.read_text()), json.loads((out / "miniature" / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.notebooks
def test_notebook_06_runs_the_shipped_warm_start(executed):
    _, res = executed
    key = res["warmstart"]["key"]
    assert res["settings"]["warmstart"] == {}  # the default recipe ...
    assert (REPO / "data" / "miniature" / f"miniature-warm-{key}" / "model.safetensors").is_file()  # ... shipped
    assert res["warmstart_time_this_run"]["cpu_s"] < 30  # loaded, not rebuilt (a build takes CPU-minutes)
    assert set(res["arms"]) == {"continuous", "discrete", "none"}
    for arm, r in res["arms"].items():
        assert [len(logs) for logs in r["logs"]] == [0 if arm == "none" else PARAMETERS["steps"]]
    n_draws = PARAMETERS["n_test"] * res["settings"]["eval_samples"]
    for arm, r in res["arms"].items():
        for x in r["before"] + r["after"]:
            assert abs(x * n_draws - round(x * n_draws)) < 1e-6  # a share of the n_test × 5 sampled answers
    # one warm start, one seed: every arm starts from the same score; it half-knows the world
    # (validation: sampled 0.43, chance is the most frequent answer's ~0.17)
    befores = {r["before"][0] for r in res["arms"].values()}
    assert len(befores) == 1 and 0.3 < befores.pop() < 0.9


@pytest.mark.slow
@pytest.mark.notebooks
def test_notebook_06_table_cell_shows_the_study_it_wrote(executed):
    notebook, res = executed
    tables = displayed_tables(notebook)
    (summary,) = [t for t in tables if t and "sampled_before" in t[0]]
    (per_seed,) = [t for t in tables if t and set(t[0]) == {"arm", "seed", "before", "after"}]
    assert [row["arm"] for row in summary] == list(res["arms"])
    for row in summary:
        r = res["arms"][row["arm"]]
        after = r["after_metrics"]
        expected = {
            "seeds": len(after),
            "sampled_before": _mean(r["before"]), "sampled_after": _mean(r["after"]),
            "majority_after": _mean(m["majority_accuracy"] for m in after),
            "greedy_after": _mean(m["greedy_accuracy"] for m in after),
            "agreement_after": _mean(m["agreement"] for m in after),
            "constant_rate_max": max(m["constant_answer_rate"] for m in after),
            "own_questions_sampled_early": _mean(d["early"]["own_questions"]["sampled_accuracy"]
                                                 for d in r["dynamics"] if d),
            "own_questions_sampled_late": _mean(d["late"]["own_questions"]["sampled_accuracy"]
                                                for d in r["dynamics"] if d),
        }
        for column, value in expected.items():
            assert _same(row[column], value), (row["arm"], column, row[column], value)
        for m in after:  # the per-seed metrics themselves are shares of the test split
            for k in ("sampled_accuracy", "majority_accuracy", "greedy_accuracy", "agreement"):
                assert 0.0 <= m[k] <= 1.0
    seeds = res["settings"]["seeds"]
    shown = {(row["arm"], int(row["seed"])): (row["before"], row["after"]) for row in per_seed}
    assert set(shown) == {(arm, s) for arm in res["arms"] for s in seeds}
    for arm, r in res["arms"].items():
        for s, before, after in zip(seeds, r["before"], r["after"]):
            assert _same(shown[arm, s][0], before) and _same(shown[arm, s][1], after)
    # the targets the cell prints are the ones written, and measured on this table
    printed = [json.loads("".join(out["text"])) for cell in notebook["cells"] for out in cell.get("outputs", [])
               if out.get("output_type") == "stream" and "".join(out["text"]).lstrip().startswith('{\n "collapse_limit"')]
    assert printed == [res["targets"]]
    rows = {row["arm"]: row for row in summary}
    gain = _number(rows["continuous"]["sampled_after"]) - _number(rows["none"]["sampled_after"])
    assert res["targets"]["continuous_minus_none_sampled"] == pytest.approx(gain, abs=1e-3)
    assert res["targets"]["collapse_limit"] == pytest.approx(res["world"]["test_most_frequent_answer_rate"] + 0.05)
