"""evaluate() on the real tiny backbone and shared samples; CLI; contamination guard; lmms-eval plugin."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
from PIL import Image

from evolmm_lib.evaluation import evaluate, score_response
from evolmm_lib.evaluation.contamination import ContaminationError, find_overlap, guard
from evolmm_lib.evaluation.datasets import load_local


@pytest.fixture(scope="module")
def chartqa_records(benchmarks_dir):
    return load_local("chartqa", benchmarks_dir / "chartqa_test_sample", limit=4)


@pytest.mark.slow
def test_evaluate_rows_summary_and_files(tiny_backbone, chartqa_records, tmp_path):
    res = evaluate(tiny_backbone, "chartqa", chartqa_records, role="solver", batch_size=3, progress=False,
                   output=tmp_path / "r.json")
    assert res.summary["n"] == 4 and res.summary["max_new_tokens"] == 16 and res.summary["role"] == "solver"
    assert res.summary["items_per_s"] > 0
    for row, doc in zip(res.rows, chartqa_records):
        assert row["prompt"] == doc["question"] + "\nAnswer the question with a single word."
        assert row["score"] == score_response("chartqa", doc, row["post"])
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["summary"]["n"] == 4 and len(saved["rows"]) == 4
    res.write(tmp_path / "r.csv")
    assert len(list(csv.DictReader(open(tmp_path / "r.csv")))) == 4


@pytest.mark.slow
def test_greedy_batched_equals_one_by_one_and_base_differs_from_trained(tiny_backbone, chartqa_records, tmp_path):
    batched = evaluate(tiny_backbone, "chartqa", chartqa_records, role=None, batch_size=4, progress=False)
    single = evaluate(tiny_backbone, "chartqa", chartqa_records[:2], role=None, batch_size=1, progress=False)
    assert [r["response"] for r in single.rows] == [r["response"] for r in batched.rows[:2]]
    # a "trained" solver: perturb its LoRA B weights, save a checkpoint, load it through adapters_from
    from evolmm_lib.backbone import load_backbone

    bb = load_backbone("tiny", config=tiny_backbone.config)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in bb.trainable_parameters("solver"):
            p.add_(torch.randn(p.shape, generator=g) * 0.5)
    bb.save_adapters(tmp_path / "checkpoint-3")
    trained = load_backbone("tiny", config=tiny_backbone.config, adapters_from=tmp_path / "checkpoint-3")
    on = evaluate(trained, "chartqa", chartqa_records, role="solver", batch_size=4, progress=False)
    off = evaluate(trained, "chartqa", chartqa_records, role="base", batch_size=4, progress=False)
    assert [r["response"] for r in off.rows] == [r["response"] for r in batched.rows]
    assert [r["response"] for r in on.rows] != [r["response"] for r in off.rows]


def test_unreadable_image_is_a_counted_skip(tiny_backbone, chartqa_records, tmp_path):
    bad = dict(chartqa_records[0], _image_path=str(tmp_path / "gone.png"))
    res = evaluate(tiny_backbone, "chartqa", [bad], progress=False, max_new_tokens=2)
    assert res.summary["n"] == 0 and list(res.summary["skipped"]) == ["0"]


def test_contamination_guard_finds_reencoded_copies(benchmarks_dir, tmp_path):
    records = load_local("mathvision", benchmarks_dir / "mathvision_testmini", limit=5)
    pool = tmp_path / "pool"
    pool.mkdir()
    Image.new("RGB", (32, 32), "white").save(pool / "clean.png")
    assert guard(pool, records, "mathvision") == []
    shutil.copy(records[1]["_image_path"], pool / "renamed.jpg")
    Image.open(records[3]["_image_path"]).convert("RGB").save(pool / "reencoded.png")
    overlap = find_overlap(pool, records)
    assert {rid for _, rid in overlap} == {records[1]["id"], records[3]["id"]}
    with pytest.warns(UserWarning, match="CONTAMINATION"), pytest.raises(ContaminationError, match="2 of 5"):
        guard(pool, records, "mathvision")
    with pytest.warns(UserWarning, match="CONTAMINATION"):
        assert len(guard(pool, records, "mathvision", allow=True)) == 2


def test_evaluate_refuses_a_contaminated_run(tiny_backbone, benchmarks_dir, tmp_path):
    records = load_local("mathvision", benchmarks_dir / "mathvision_testmini", limit=2)
    (tmp_path / "pool").mkdir()
    shutil.copy(records[0]["_image_path"], tmp_path / "pool" / "x.jpg")
    with pytest.warns(UserWarning), pytest.raises(ContaminationError):
        evaluate(tiny_backbone, "mathvision", records, train_pool=tmp_path / "pool", progress=False)


@pytest.mark.slow
def test_cli_evaluate(benchmarks_dir, tmp_path, capsys):
    from evolmm_lib.__main__ import main

    out = tmp_path / "mv.json"
    rc = main(["evaluate", "--model", "tiny", "--benchmark", "mathvision", "--data-dir",
               str(benchmarks_dir / "mathvision_testmini"), "--limit", "3", "--max-new-tokens", "8",
               "--output", str(out), "--no-progress"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n"] == 3 and summary["benchmark"] == "mathvision"
    assert len(json.loads(out.read_text())["rows"]) == 3


def test_lmms_eval_registration_when_installed():
    pytest.importorskip("lmms_eval")
    from lmms_eval.models import get_model

    from evolmm_lib.evaluation.lmms_eval_plugin import EvoLMM

    assert get_model("evolmm") is EvoLMM


@pytest.mark.slow
def test_lmms_eval_model_generates_batched_and_postprocesses(benchmarks_dir, tmp_path):
    """The plugin's generate_until on lmms-eval-shaped requests (works with or without lmms-eval)."""
    from types import SimpleNamespace

    from evolmm_lib.evaluation import build_prompt
    from evolmm_lib.evaluation.datasets import record_image
    from evolmm_lib.evaluation.lmms_eval_plugin import EvoLMM

    docs = load_local("chartqa", benchmarks_dir / "chartqa_test_sample", limit=3)
    model = EvoLMM(pretrained="tiny", batch_size=2, max_new_tokens=4)
    model.task_dict = {"chartqa": {"test": docs}}
    reqs = [SimpleNamespace(args=(build_prompt("chartqa", d), {"max_new_tokens": 16}, lambda doc: [record_image(doc)],
                                  i, "chartqa", "test")) for i, d in enumerate(docs)]
    out = model.generate_until(reqs)
    assert len(out) == 3 and all(isinstance(o, str) for o in out)
    assert model.role_name is None  # no adapter given: the base model
