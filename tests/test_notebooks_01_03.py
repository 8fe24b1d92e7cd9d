"""Notebooks 01–03 executed by papermill with a real kernel on their CPU default (the miniature warm start)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nbformat
import pytest

from evolmm_lib.notebook_chain import NOTEBOOK_DIR, run_chain

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]


def _outputs(nb) -> tuple[str, int]:
    """All stdout / text of the executed notebook, and the number of PNG figures it displayed."""
    text, figures = [], 0
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                text.append(o.text)
            elif o.output_type in ("display_data", "execute_result"):
                figures += "image/png" in o.data
                text.append(o.data.get("text/plain", ""))
            elif o.output_type == "error":
                raise AssertionError(f"{o.ename}: {o.evalue}")
    return "\n".join(text), figures


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("chain")
    results = run_chain(run, only=["01", "02", "03"])
    assert [r["notebook"] for r in results] == ["01_backbone.ipynb", "02_proposer.ipynb", "03_solver_consistency.ipynb"]
    return run


def test_01_backbone(executed):
    text, figures = _outputs(nbformat.read(executed / "01_backbone.ipynb", 4))
    assert "backend: transformers" in text and "adapters: ['solver', 'proposer']" in text
    assert "vision modules adapted: 0" in text
    assert "<|vision_start|><|image_pad|><|vision_end|>" in text and "Question: How many" in text
    assert "solver == reference: True" in text  # LoRA B = 0 before training
    assert figures >= 1
    record = json.loads((executed / "01_backbone" / "backbone.json").read_text())
    assert record["model"] == "miniature" and record["parameters"]["solver"] == record["parameters"]["proposer"] > 0
    assert re.fullmatch(r"<answer>\d</answer>", record["texts"]["solver"])  # the warm start answers the world's way
    assert set(record["texts"]) == {"solver", "reference"}


def test_02_proposer(executed):
    text, figures = _outputs(nbformat.read(executed / "02_proposer.ipynb", 4))
    assert "-> 'What is the most prominent value shown in the image?'" in text  # empty-output fallback
    assert "distinct_2" in text and figures >= 1
    out = executed / "02_proposer"
    rows = list(csv.DictReader((out / "proposals.csv").open()))
    assert len(rows) == 9 and all(r["question"].strip() for r in rows)
    assert len({r["image"] for r in rows}) == 9 and all(r["image"].startswith("pool_") for r in rows)
    stats = json.loads((out / "question_stats.json").read_text())
    assert stats["questions"] == 9 and 0.0 < stats["distinct_1"] <= 1.0
    assert stats["world_question_rate"] >= 0.8  # readable world questions, each with its exact answer
    assert all(r["exact answer"].isdigit() for r in rows if r["world question"] == "True")
    assert (out / "gallery.png").stat().st_size > 1000


def test_03_solver_consistency(executed):
    text, figures = _outputs(nbformat.read(executed / "03_solver_consistency.ipynb", 4))
    assert "N=5  γ=0.7  λ_len=0.1  τ=6  μ_H=0.9  σ_H=0.35" in text
    assert "best partition for the Proposer: 3+1+1" in text
    assert figures >= 3
    out = executed / "03_solver_consistency"
    cons = list(csv.DictReader((out / "consistency.csv").open()))
    assert len(cons) == 6
    for r in cons:
        assert r["n"] == "5" and 0.2 <= float(r["agreement"]) <= 1.0 and 0.0 <= float(r["proposer_reward"]) <= 1.0
    assert len({r["agreement"] for r in cons}) >= 2  # some questions agree more than others
    table = list(csv.DictReader((out / "reward_table.csv").open()))
    assert [r["partition"] for r in table] == ["5", "4+1", "3+2", "3+1+1", "2+2+1", "2+1+1+1", "1+1+1+1+1"]
    for name in ("answer_histograms.png", "solver_reward_vs_agreement.png", "proposer_reward_vs_entropy.png"):
        assert (out / name).stat().st_size > 1000, name


def test_source_notebooks_are_clean_and_parameterised():
    books = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    assert {"01_backbone.ipynb", "02_proposer.ipynb", "03_solver_consistency.ipynb"} <= {b.name for b in books}
    for path in books:
        nb = nbformat.read(path, 4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        for c in code:
            assert not c.get("outputs") and c.get("execution_count") is None, f"{path.name}: stored outputs"
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        assert "google.colab" in code[0].source, f"{path.name}: first code cell must be the Colab-only install"
        assert "run_dir" in tagged[0].source, path.name
        if re.search(r"^model\s*=", tagged[0].source, re.M):  # 06 has no model parameter: its own backbone
            assert 'model = "miniature"' in tagged[0].source, f"{path.name}: the CPU default is the miniature world"
