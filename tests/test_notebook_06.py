"""Notebook 06 in the chain, on the shipped warm start: the table it displays is the study it wrote."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser

import pytest

from conftest import REPO

PARAMETERS = {"steps": 3, "eval_every": 3, "n_test": 20, "n_validation": 6}
"""A few self-evolution steps of every default arm from the default warm start (no ``arms``, ``rl`` or
``warmstart`` override: the notebook's own defaults, the CI setting's)."""


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
def test_notebook_06_runs_the_default_warm_start_and_arms(executed):
    from evolmm_lib.miniature.study import DEFAULT_RL, DEFAULT_WARMSTART, ci_settings
    from evolmm_lib.miniature.warmstart import WarmStartRecipe

    _, res = executed
    assert res["settings"]["warmstart"] == DEFAULT_WARMSTART  # the study's default recipe (spread) ...
    assert res["settings"]["rl"] == DEFAULT_RL
    assert res["warmstart"]["recipe"]["logit_spread"] == DEFAULT_WARMSTART["logit_spread"]
    base = WarmStartRecipe(**res["warmstart"]["recipe"]).base().key()
    assert res["warmstart"]["derived_from"] == base
    assert (REPO / "data" / "miniature" / f"miniature-warm-{base}" / "model.safetensors").is_file()  # ... from the shipped SFT
    assert res["warmstart_time_this_run"]["cpu_s"] < 30  # derived or loaded, not trained (a build takes CPU-minutes)
    assert list(res["arms"]) == ci_settings().arms == ["continuous", "oracle", "official", "none"]
    for arm, r in res["arms"].items():
        assert [len(logs) for logs in r["logs"]] == [0 if arm == "none" else PARAMETERS["steps"]]
    n_draws = PARAMETERS["n_test"] * res["settings"]["eval_samples"]
    for arm, r in res["arms"].items():
        for x in r["before"] + r["after"]:
            assert abs(x * n_draws - round(x * n_draws)) < 1e-6  # a share of the n_test × 5 sampled answers
    # one warm start, one seed: every arm starts from the same score, above chance (~0.17) on this 20-item test
    befores = {r["before"][0] for r in res["arms"].values()}
    assert len(befores) == 1 and 0.1 < befores.pop() < 0.9
    # oracle asks the world's own question of each pool image
    oracle = res["arms"]["oracle"]["dynamics"][0]
    assert oracle["early"]["own_questions"]["world_question_rate"] == 1.0


@pytest.mark.slow
@pytest.mark.notebooks
def test_notebook_06_shows_the_diagnostics_it_wrote(executed):
    from evolmm_lib.miniature.study import diagnostic_rows

    notebook, res = executed
    images = [out for cell in notebook["cells"] for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
    # the world's sample strip, then the study's 8 figures (5 curves/bars + 3 diagnostics)
    assert len(images) == 1 + 8
    (diag,) = [t for t in displayed_tables(notebook) if t and "toward_own_majority" in t[0]]
    expected = diagnostic_rows(res)
    assert [(r["arm"], int(r["seed"]), r["phase"]) for r in diag] == [(r["arm"], r["seed"], r["phase"]) for r in expected]
    assert {r["arm"] for r in expected} == {"continuous", "oracle", "official"}
    for shown, row in zip(diag, expected):
        for key in ("toward_own_majority", "toward_global_elsewhere", "own_sampled_accuracy"):
            if row[key] is not None:
                assert _same(shown[key], row[key]), (row["arm"], key, shown[key], row[key])


@pytest.mark.slow
@pytest.mark.notebooks
def test_notebook_06_table_cell_shows_the_study_it_wrote(executed):
    notebook, res = executed
    tables = displayed_tables(notebook)
    (summary,) = [t for t in tables if t and "sampled_before" in t[0]]
    (per_seed,) = [t for t in tables if t and {"arm", "seed", "before", "after", "greedy", "constant_rate"} <= set(t[0])]
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
