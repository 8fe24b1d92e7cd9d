"""papers/evolmm_results.csv holds the paper's reported numbers, one row per (model, method, benchmark)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

CSV = Path(__file__).resolve().parent.parent / "papers" / "evolmm_results.csv"
BENCHMARKS = ["chartqa", "mathvista", "mathvision", "mathverse", "infovqa", "ai2d", "scienceqa", "mmmu"]
REPORTED = {  # paper Table 1 and the official README, benchmark order as BENCHMARKS
    ("Qwen2.5-VL-7B", "baseline"): [84.00, 68.46, 23.91, 43.78, 80.44, 82.61, 88.30, 51.11],
    ("Qwen2.5-VL-7B", "discrete"): [84.62, 68.88, 22.52, 42.10, 80.52, 82.18, 87.98, 50.84],
    ("Qwen2.5-VL-7B", "continuous"): [86.70, 70.52, 24.81, 44.88, 81.06, 83.41, 89.50, 52.01],
    ("Qwen2.5-VL-7B", "qlora"): [85.32, 68.92, 23.97, 43.82, 80.83, 82.75, 88.73, 51.71],
    ("Qwen2.5-VL-7B", "full"): [84.20, 68.41, 23.37, 43.77, 80.37, 82.64, 88.12, 51.23],
    ("Qwen2.5-VL-72B", "baseline"): [88.20, 73.93, 36.92, 54.09, 85.97, 87.34, 93.36, 65.86],
    ("Qwen2.5-VL-72B", "continuous"): [91.04, 76.44, 38.31, 55.45, 86.63, 88.19, 94.63, 67.02],
    ("InternVL3-8B", "baseline"): [82.40, 65.20, 25.36, 31.62, 68.77, 83.19, 97.77, 52.78],
    ("InternVL3-8B", "continuous"): [84.97, 67.20, 26.44, 32.92, 69.39, 83.95, 98.13, 53.77],
    ("Gemma-3-12B-it", "baseline"): [55.64, 60.13, 24.53, 28.96, 50.69, 79.05, 83.89, 48.11],
    ("Gemma-3-12B-it", "continuous"): [58.61, 62.13, 25.61, 30.26, 51.37, 79.85, 84.97, 49.10],
    ("Llama-3.2-11B-Vision", "baseline"): [29.24, 46.59, 23.47, 37.23, 56.69, 46.44, 56.87, 47.93],
    ("Llama-3.2-11B-Vision", "continuous"): [32.24, 48.59, 24.55, 38.53, 57.37, 47.32, 58.07, 48.92],
}


@pytest.fixture(scope="module")
def results():
    return pd.read_csv(CSV)


def test_columns_and_one_row_per_model_method_benchmark(results):
    assert list(results.columns) == ["model", "method", "benchmark", "score", "source", "note"]
    assert not results.duplicated(["model", "method", "benchmark"]).any()
    assert results["source"].notna().all()


@pytest.mark.parametrize("key", list(REPORTED), ids=lambda k: f"{k[0]}-{k[1]}")
def test_reported_numbers(results, key):
    rows = results[(results.model == key[0]) & (results.method == key[1])].set_index("benchmark")["score"]
    assert [rows[b] for b in BENCHMARKS] == pytest.approx(REPORTED[key], abs=1e-9)


def test_conflicting_mathvista_baseline_is_kept_and_flagged(results):
    alt = results[(results.method == "baseline_alt")]
    assert len(alt) == 1 and alt.iloc[0]["score"] == pytest.approx(68.20) and "FLAG" in alt.iloc[0]["note"].upper()


def test_notebook_05_reads_the_7b_rows():
    from evolmm_lib.evaluation.report import paper_table

    table = paper_table(CSV)
    assert table.loc["chartqa", "paper Δ"] == pytest.approx(2.70)
    assert set(BENCHMARKS) <= set(table.index)
