"""Tables and a plot for notebook 05: the kit's scores beside the paper's (``papers/evolmm_results.csv``)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

PAPER_RESULTS = Path(__file__).resolve().parents[2] / "papers" / "evolmm_results.csv"
"""The paper's numbers as shipped in a source checkout (``paper_table(path)`` reads any copy). Columns ``model,method,benchmark,score,source,note`` (methods: baseline, discrete, continuous, qlora, full)."""


def newest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete ``run_dir/train/checkpoint-<step>`` (:func:`evolmm_lib.checkpoint.is_complete`)."""
    from ..checkpoint import latest_checkpoint

    return latest_checkpoint(Path(run_dir) / "train")


def paper_table(path: str | os.PathLike = PAPER_RESULTS, model: str = "Qwen2.5-VL-7B") -> pd.DataFrame | None:
    """Benchmark × (baseline, discrete, continuous) for ``model``, with the continuous − baseline delta."""
    path = Path(path)
    if not path.is_file():
        return None
    df = pd.read_csv(path)
    df = df[(df["model"] == model) & df["method"].isin(["baseline", "discrete", "continuous"])]
    table = df.pivot_table(index="benchmark", columns="method", values="score", aggfunc="first")
    table = table.reindex(columns=[c for c in ("baseline", "discrete", "continuous") if c in table.columns])
    if {"baseline", "continuous"} <= set(table.columns):
        table["paper Δ"] = (table["continuous"] - table["baseline"]).round(2)
    return table


SUMMARY_COLUMNS = ["benchmark", "role", "n", "score", "seconds", "items_per_s", "max_new_tokens"]
"""The columns of an evaluation summary that notebook 05 shows."""


def summary_table(summaries: list[dict]) -> pd.DataFrame:
    """One row per (benchmark, role) evaluation: :data:`SUMMARY_COLUMNS` (empty when nothing was evaluated)."""
    return pd.DataFrame(summaries, columns=SUMMARY_COLUMNS) if not summaries else pd.DataFrame(summaries)[SUMMARY_COLUMNS]


def kit_table(summaries: list[dict]) -> pd.DataFrame:
    """Benchmark × role (base, solver) scores from :func:`~evolmm_lib.evaluation.runner.evaluate` summaries."""
    df = pd.DataFrame(summaries)
    if df.empty:  # no benchmark data loaded: an empty table, not an error
        return pd.DataFrame(columns=["n"], index=pd.Index([], name="benchmark"))
    table = df.pivot_table(index="benchmark", columns="role", values="score", aggfunc="first")
    table.columns = [f"kit {c}" for c in table.columns]
    if {"kit base", "kit solver"} <= set(table.columns):
        table["kit Δ"] = (table["kit solver"] - table["kit base"]).round(2)
    table["n"] = df.groupby("benchmark")["n"].max()
    return table


def side_by_side(summaries: list[dict], paper: pd.DataFrame | None) -> pd.DataFrame:
    kit = kit_table(summaries)
    return kit if paper is None else kit.join(paper, how="outer")


def plot_deltas(table: pd.DataFrame, ax=None):
    """Bars of the EvoLMM gain over the base model: paper (7B) and the kit's run, per benchmark."""
    import matplotlib.pyplot as plt

    cols = [c for c in ("paper Δ", "kit Δ") if c in table.columns]
    ax = ax or plt.subplots(figsize=(8, 3.5))[1]
    if cols:
        table[cols].plot.bar(ax=ax)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("accuracy gain (points)")
    ax.set_title("EvoLMM − base model")
    return ax
