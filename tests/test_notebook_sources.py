"""One authoring path: each notebook's percent-format source (NN_name.py) and its .ipynb hold the same cells."""

from __future__ import annotations

import re

import jupytext
import nbformat
import pytest

from evolmm_lib.notebook_chain import NOTEBOOK_DIR, chain

BOOKS = chain()


def _cells(nb) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_every_notebook_has_a_source():
    assert [b.stem[:2] for b in BOOKS] == ["01", "02", "03", "04", "05", "06"]
    sources = sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
    assert sources == [b.stem for b in BOOKS], "each NN_name.ipynb is paired with NN_name.py"
    assert not (NOTEBOOK_DIR / "build_notebooks.py").exists()


@pytest.mark.parametrize("book", BOOKS, ids=lambda p: p.stem)
def test_notebook_matches_its_source(book):
    source = jupytext.read(book.with_suffix(".py"))
    committed = nbformat.read(book, 4)
    assert _cells(committed) == _cells(source), (
        f"{book.name} drifted from {book.with_suffix('.py').name}: run `jupytext --sync notebooks/*.py`")
    assert committed.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("book", BOOKS, ids=lambda p: p.stem)
def test_no_path_hacks_or_forced_backends(book):
    text = book.with_suffix(".py").read_text()
    assert "sys.path" not in text, f"{book.name}: the kit is installed, notebooks import it as is"
    assert not re.search(r"matplotlib\.use\(|MPLBACKEND", text), f"{book.name}: keep the kernel's inline backend"


def test_drift_is_detected(tmp_path):
    """The comparison above fails on a one-character edit of a cell."""
    book = BOOKS[0]
    nb = nbformat.read(book, 4)
    nb.cells[-1].source += " "
    nb.cells[-1].source = nb.cells[-1].source.replace("wrote", "wrote:")
    assert _cells(nb) != _cells(jupytext.read(book.with_suffix(".py")))


def test_chain_parameters_from_the_command_line():
    from evolmm_lib.notebook_chain import parse_params

    assert parse_params(["model=qwen2.5-vl-7b", "steps=40", "lr=1e-6", "checkpoint=None", "benchmarks=[chartqa]"]) == {
        "model": "qwen2.5-vl-7b", "steps": 40, "lr": 1e-6, "checkpoint": None, "benchmarks": ["chartqa"]}
    with pytest.raises(SystemExit, match="expected NAME=VALUE"):
        parse_params(["steps"])
