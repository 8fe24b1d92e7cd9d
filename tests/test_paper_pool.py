"""The paper-pool builder on small local copies in the hub sets' formats (offline)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from evolmm_lib import paper_pool
from evolmm_lib.images import pixel_sha256 as pil_sha256

REPO = Path(__file__).resolve().parents[1]


def png(seed: int, side: int = 48) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def write_chartqa(root: Path, n: int = 10, side: int = 48) -> None:
    """HuggingFaceM4/ChartQA's layout (image, query, label), saved with save_to_disk; row 3 corrupt, row 5 = row 4."""
    rows = [{"image": {"bytes": png(i, side), "path": None}, "query": f"q{i}", "label": [str(i)]} for i in range(n)]
    rows[3]["image"] = {"bytes": b"\x89PNG truncated", "path": None}
    rows[5]["image"] = {"bytes": png(4, side), "path": None}
    features = datasets.Features({"image": datasets.Image(), "query": datasets.Value("string"),
                                  "label": datasets.List(datasets.Value("string"))})
    datasets.Dataset.from_list(rows, features=features).save_to_disk(str(root / "chartqa"))


def write_geometry3k(root: Path, n: int = 6) -> None:
    """hiyouga/geometry3k's layout (images: a list of Image), as a parquet file."""
    rows = [{"images": [{"bytes": png(100 + i), "path": None}], "problem": "p", "answer": "a"} for i in range(n)]
    features = datasets.Features({"images": datasets.List(datasets.Image()), "problem": datasets.Value("string"),
                                  "answer": datasets.Value("string")})
    (root / "geometry3k").mkdir(parents=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(root / "geometry3k" / "train-00000.parquet"))


@pytest.fixture()
def local_root(tmp_path):
    root = tmp_path / "hub"
    write_chartqa(root)
    write_geometry3k(root)
    return root


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def test_pool_keeps_images_only_dedups_and_counts_corrupt(tmp_path, local_root):
    out = tmp_path / "pool"
    counts = paper_pool.build_pool(out, per_source=7, sources=["chartqa", "geometry3k"], local_root=local_root,
                                   eval_hashes={}, progress=False)
    assert counts["chartqa"] == {"kept": 7, "corrupt": 1, "duplicate": 1}
    assert counts["geometry3k"] == {"kept": 6}  # source exhausted before 7
    manifest = read_jsonl(out / "manifest.jsonl")
    assert len(manifest) == 13 and len({m["hash"] for m in manifest}) == 13
    first = manifest[0]
    assert set(first) >= {"source", "split", "index", "hash", "licence", "file"}
    assert (first["source"], first["split"], first["index"], first["licence"]) == ("chartqa", "train", 0, "GPL-3.0")
    assert [m["index"] for m in manifest if m["source"] == "chartqa"] == [0, 1, 2, 4, 6, 7, 8]
    # the written file is the source's pixels (hash re-computed from disk), and no label travels with it
    with Image.open(out / first["file"]) as im:
        assert pil_sha256(im) == first["hash"] == pil_sha256(Image.open(io.BytesIO(png(0))))
    assert not any("query" in m or "label" in m or "answer" in m for m in manifest)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["chartqa", "geometry3k"]
    rejected = read_jsonl(out / "rejected.jsonl")
    assert {(r["index"], r["reason"]) for r in rejected} == {(3, "corrupt"), (5, "duplicate")}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 13 and summary["sources"]["chartqa"]["hub"] == "HuggingFaceM4/ChartQA"


def test_pool_refuses_images_of_a_known_evaluation_set(tmp_path, local_root, monkeypatch):
    """An evaluation image (the kit's local ChartQA sample, stored as BMP) is refused even re-encoded."""
    bench = tmp_path / "benchmarks" / "chartqa_test_sample"
    bench.mkdir(parents=True)
    Image.open(io.BytesIO(png(2))).save(bench / "img.bmp")
    (bench / "data.jsonl").write_text(json.dumps({"question": "q", "answer": "1", "image": "img.bmp"}) + "\n")
    monkeypatch.setenv("EVOLMM_BENCHMARKS_DIR", str(tmp_path / "benchmarks"))
    out = tmp_path / "pool"
    counts = paper_pool.build_pool(out, per_source=20, sources=["chartqa"], local_root=local_root, progress=False)
    assert counts["chartqa"]["contaminated"] == 1 and counts["chartqa"]["kept"] == 7
    bad = pil_sha256(Image.open(io.BytesIO(png(2))))
    assert bad not in {m["hash"] for m in read_jsonl(out / "manifest.jsonl")}
    (row,) = [r for r in read_jsonl(out / "rejected.jsonl") if r["reason"] == "contaminated"]
    assert row["index"] == 2 and row["detail"].startswith("chartqa #")


def test_loader_is_pluggable_and_resume_continues_after_last_record(tmp_path):
    """A second run with a larger budget only reads records after the last one seen."""
    seen = []

    def loader(source, local_root):
        rows = [{"image": {"bytes": png(i), "path": None}} for i in range(8)]
        for i, r in enumerate(rows):
            seen.append(i)
            yield r

    out = tmp_path / "pool"
    paper_pool.build_pool(out, per_source=3, sources=["chartqa"], eval_hashes={}, loader=loader, progress=False)
    seen.clear()
    counts = paper_pool.build_pool(out, per_source=5, sources=["chartqa"], eval_hashes={}, loader=loader,
                                   progress=False)
    assert counts["chartqa"]["kept"] == 5
    assert [m["index"] for m in read_jsonl(out / "manifest.jsonl")] == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_killed_build_resumes_to_the_same_pool(tmp_path):
    """SIGKILL a real CLI build mid-way, run it again: same images as an uninterrupted build, none twice."""
    root = tmp_path / "hub"
    write_chartqa(root, n=160, side=320)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "EVOLMM_BENCHMARKS_DIR": str(tmp_path / "none")}
    cmd = [sys.executable, "-m", "evolmm_lib", "data", "paper-pool", "--local-root", str(root),
           "--sources", "chartqa", "--per-source", "150", "--no-progress"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--output", str(killed)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(read_jsonl_safe(killed / "manifest.jsonl")) < 10:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(read_jsonl_safe(killed / "manifest.jsonl"))
    assert 10 <= partial < 150, "the build was not killed mid-way"
    assert subprocess.run(cmd + ["--output", str(killed)], env=env, capture_output=True).returncode == 0
    fresh = tmp_path / "fresh"
    assert subprocess.run(cmd + ["--output", str(fresh)], env=env, capture_output=True).returncode == 0
    a, b = read_jsonl(killed / "manifest.jsonl"), read_jsonl(fresh / "manifest.jsonl")
    assert [(m["index"], m["hash"]) for m in a] == [(m["index"], m["hash"]) for m in b]
    assert len(a) == 150
    assert sorted(p.name for p in (killed / "images" / "chartqa").iterdir()) == sorted(
        Path(m["file"]).name for m in a)


def read_jsonl_safe(path: Path) -> list:
    try:
        return [line for line in path.read_text().splitlines() if line.endswith("}")]
    except FileNotFoundError:
        return []


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    from evolmm_lib.__main__ import main

    rc = main(["data", "paper-pool", "--output", str(tmp_path / "p"), "--local-root", str(tmp_path / "missing"),
               "--sources", "chartqa", "--no-progress"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 1 and len(out) == 1 and "no local copy of 'chartqa'" in out[0]
    assert main(["data", "paper-pool", "--output", str(tmp_path / "p"), "--per-source", "0"]) == 2


def test_sources_cover_the_papers_six_and_avoid_evaluated_splits():
    from evolmm_lib.evaluation.tasks import get_task

    assert list(paper_pool.SOURCES) == ["chartqa", "ai2d", "infovqa", "plotqa", "chartx", "geometry3k"]
    for name in ("chartqa", "ai2d", "infovqa"):
        task = get_task(name)
        src = paper_pool.SOURCES[name]
        assert (src.path, src.config, src.split) != (task.hub_path, task.hub_name, task.hub_split)
        assert src.split == "train"
