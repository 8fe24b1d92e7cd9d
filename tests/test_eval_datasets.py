"""Local benchmark folders: real shared samples load; a missing field or image names the record."""

from __future__ import annotations

import json
import shutil

import pytest

from evolmm_lib.evaluation.datasets import DatasetError, load_benchmark, load_local, record_image


def test_shared_samples_load(benchmarks_dir):
    mv = load_local("mathvision", benchmarks_dir / "mathvision_testmini")
    assert len(mv) == 304 and record_image(mv[0]).mode == "RGB"
    assert len(load_local("chartqa", benchmarks_dir / "chartqa_test_sample", limit=5)) == 5
    vista = load_local("mathvista", benchmarks_dir / "mathvista_testmini_annotations", require_images=False)
    assert len(vista) == 1000 and "query" in vista[0]
    with pytest.raises(DatasetError, match="record 1\\): image"):
        load_local("mathvista", benchmarks_dir / "mathvista_testmini_annotations")  # annotations only


def test_default_data_dir_is_the_shared_sample(benchmarks_dir, monkeypatch):
    monkeypatch.setenv("EVOLMM_BENCHMARKS_DIR", str(benchmarks_dir))
    assert len(load_benchmark("chartqa", limit=3)) == 3


def _copy(benchmarks_dir, tmp_path, n=3):
    src = benchmarks_dir / "chartqa_test_sample"
    lines = (src / "data.jsonl").read_text().splitlines()[:n]
    dst = tmp_path / "cq"
    (dst / "images").mkdir(parents=True)
    for line in lines:
        shutil.copy(src / json.loads(line)["image"], dst / json.loads(line)["image"])
    return dst, [json.loads(line) for line in lines]


def test_missing_field_names_the_record(benchmarks_dir, tmp_path):
    dst, recs = _copy(benchmarks_dir, tmp_path)
    del recs[1]["answer"]
    (dst / "data.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    with pytest.raises(DatasetError, match=r"line 2 \(record 1\): missing field\(s\) \['answer'\]"):
        load_local("chartqa", dst)


def test_missing_image_names_the_record(benchmarks_dir, tmp_path):
    dst, recs = _copy(benchmarks_dir, tmp_path)
    (dst / recs[2]["image"]).unlink()
    (dst / "data.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    with pytest.raises(DatasetError, match="record 2.*not found"):
        load_local("chartqa", dst)


def test_no_data_jsonl_and_offline_hub_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="no data.jsonl"):
        load_local("chartqa", tmp_path)
    with pytest.raises(DatasetError, match="Offline, pass a local folder"):
        load_benchmark("ai2d", "hub", limit=1)
