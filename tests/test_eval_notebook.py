"""Notebook 05 runs in the papermill chain: base only without a checkpoint, base vs solver with one."""

from __future__ import annotations

import json

import pytest
import torch

from evolmm_lib.evaluation.report import newest_checkpoint, paper_table, side_by_side


def _checkpoint(tiny_config, folder):
    """A trainer checkpoint whose Solver adapter differs from the base (adapters + a trainer state)."""
    from evolmm_lib import checkpoint as ckpt
    from evolmm_lib.backbone import load_backbone

    bb = load_backbone("tiny", config=tiny_config)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in bb.trainable_parameters("solver"):
            p.add_(torch.randn(p.shape, generator=g) * 0.5)
    bb.save_adapters(folder)
    torch.save({"step": int(folder.name.split("-")[-1])}, folder / ckpt.STATE_FILE)


def test_newest_checkpoint_picks_the_largest_complete_step(tiny_config, tmp_path):
    assert newest_checkpoint(tmp_path) is None
    _checkpoint(tiny_config, tmp_path / "train" / "checkpoint-2")
    _checkpoint(tiny_config, tmp_path / "train" / "checkpoint-10")
    (tmp_path / "train" / "checkpoint-99").mkdir()  # incomplete: no adapters
    _checkpoint(tiny_config, tmp_path / "train" / "checkpoint-50")
    (tmp_path / "train" / "checkpoint-50" / "trainer_state.pt").unlink()  # incomplete: no trainer state
    assert newest_checkpoint(tmp_path).name == "checkpoint-10"


def test_paper_table_beside_kit_scores(tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text("model,method,benchmark,score,source,note\n"
                   "Qwen2.5-VL-7B,baseline,chartqa,84.00,Table 1,\nQwen2.5-VL-7B,discrete,chartqa,84.62,Table 1,\n"
                   "Qwen2.5-VL-7B,continuous,chartqa,86.70,Table 1,\nQwen2.5-VL-72B,baseline,chartqa,88.20,Table 2,\n")
    paper = paper_table(csv)
    assert paper.loc["chartqa", "paper Δ"] == pytest.approx(2.70)
    table = side_by_side([{"benchmark": "chartqa", "role": "base", "score": 10.0, "n": 4},
                          {"benchmark": "chartqa", "role": "solver", "score": 25.0, "n": 4}], paper)
    assert table.loc["chartqa", "kit Δ"] == 15.0 and table.loc["chartqa", "baseline"] == 84.0
    assert paper_table(tmp_path / "missing.csv") is None


@pytest.mark.slow
@pytest.mark.notebooks
def test_notebook_05_in_the_chain(tiny_config, tmp_path, benchmarks_dir):
    from evolmm_lib.notebook_chain import run_chain

    run = tmp_path / "run"
    _checkpoint(tiny_config, run / "train" / "checkpoint-3")
    run_chain(run, only=["05"], parameters={"model": "tiny", "limit": 3, "benchmarks": ["chartqa", "mathvision"],
                                           "world_test_items": 4, "world_samples": 2})
    world = (run / "eval" / "world_test.csv").read_text().splitlines()
    assert world[0].startswith("role,n,sampled_accuracy") and [r.split(",")[:2] for r in world[1:]] == [
        ["base", "4"], ["solver", "4"]]  # the labelled world test split, base vs trained Solver
    assert (run / "eval" / "world_test.png").stat().st_size > 0
    summaries = json.loads((run / "eval" / "summaries.json").read_text())
    assert {(s["benchmark"], s["role"]) for s in summaries} == {(b, r) for b in ("chartqa", "mathvision")
                                                               for r in ("base", "solver")}
    assert all(s["n"] == 3 for s in summaries)
    assert (run / "eval" / "deltas.png").stat().st_size > 0
    source = json.loads((run.parent / "run" / "05_evaluation.ipynb").read_text())
    assert any("checkpoint-3" in "".join(o.get("text", "")) for c in source["cells"] for o in c.get("outputs", []))


def test_no_benchmark_data_gives_empty_tables_not_an_error():
    """Notebook 05 without any benchmark folder: the summary is empty, the paper's table still shows."""
    from evolmm_lib.evaluation.report import SUMMARY_COLUMNS, plot_deltas, summary_table

    assert list(summary_table([]).columns) == SUMMARY_COLUMNS and summary_table([]).empty
    paper = paper_table()
    table = side_by_side([], paper)
    assert list(table.index) == list(paper.index) and table["n"].isna().all()
    plot_deltas(table)
