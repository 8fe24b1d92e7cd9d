"""``evaluate --train-pool DIR``: the command line hands the pool to the guard; a contaminated pool is refused
with one ``error:`` line and exit status 2, ``--allow-contamination`` evaluates anyway."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, make_images


@pytest.fixture
def benchmark_and_pools(tmp_path):
    """A one-item local ChartQA folder, a pool holding a re-encoded copy of its image, and a clean pool."""
    from PIL import Image

    data = tmp_path / "data"
    (image,) = make_images(data / "images", 1)
    (data / "data.jsonl").write_text(json.dumps({"id": "7", "question": "q", "answer": "1",
                                                 "image": "images/img_00.png"}) + "\n")
    dirty = tmp_path / "dirty"
    (dirty / "other").mkdir(parents=True)
    for colour in ("black", "white"):  # unrelated images beside the copy
        Image.new("RGB", (112, 112), colour).save(dirty / "other" / f"{colour}.png")
    Image.open(image).convert("RGB").save(dirty / "renamed.bmp")
    clean = tmp_path / "clean"
    clean.mkdir()
    Image.new("RGB", (112, 112), "white").save(clean / "img_00.png")  # the benchmark image's name, other pixels
    return data, dirty, clean


def _evaluate_args(data, pool, *extra):
    return ["evaluate", "--benchmark", "chartqa", "--data-dir", str(data), "--train-pool", str(pool),
            "--limit", "1", "--max-new-tokens", "2", "--no-progress", *extra]


@pytest.mark.slow
def test_contaminated_pool_is_one_error_line_and_status_2(benchmark_and_pools, tmp_path):
    data, dirty, _ = benchmark_and_pools
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "evolmm_lib", *_evaluate_args(data, dirty)], env=env,
                         capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert run.returncode == 2, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, run.stderr[-3000:]
    assert "CONTAMINATION: 1 of 1" in errors[0] and "renamed.bmp = chartqa #7" in errors[0]
    assert "--allow-contamination" in errors[0]
    assert run.stdout == ""  # nothing was scored


def test_allow_contamination_and_a_clean_pool_evaluate(benchmark_and_pools, capsys):
    from evolmm_lib.__main__ import main

    data, dirty, clean = benchmark_and_pools
    with pytest.warns(UserWarning, match="CONTAMINATION: 1 of 1"):
        assert main(_evaluate_args(data, dirty, "--allow-contamination")) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["benchmark"], summary["n"]) == ("chartqa", 1)
    assert main(_evaluate_args(data, clean)) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 1
