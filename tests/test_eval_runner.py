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


def test_lmms_eval_registration():
    from lmms_eval.models import get_model  # make test installs the eval extra: no skip

    from evolmm_lib.evaluation.lmms_eval_plugin import EvoLMM

    assert get_model("evolmm") is EvoLMM


TWO_ITEM_TASK = """dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
task: evolmm_two_items
test_split: test
output_type: generate_until
doc_to_visual: !function two_items.doc_to_visual
doc_to_text: !function two_items.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 4
  do_sample: false
process_results: !function two_items.process_results
metric_list:
  - metric: relaxed_overall
    aggregation: mean
    higher_is_better: true
"""

TWO_ITEM_UTILS = """from PIL import Image
from lmms_eval.tasks.chartqa.utils import chartqa_process_results as process_results  # noqa: F401

from evolmm_lib.evaluation import build_prompt


def doc_to_visual(doc):
    return [Image.open(doc["image"]).convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return build_prompt("chartqa", doc)
"""


@pytest.mark.slow
def test_lmms_eval_runs_a_two_item_task_on_the_tiny_model(tiny_backbone, tmp_path):
    """``python -m lmms_eval --model evolmm`` on a local two-item ChartQA-style task: the harness gets the
    same post-processed answers as the kit's own runner and scores them with its ChartQA metric."""
    import os
    import subprocess
    import sys

    from conftest import REPO, make_images

    paths = make_images(tmp_path / "images", 2)
    docs = [{"id": i, "question": "What colour is the square?", "answer": a, "type": "human_test",
             "image": str(p), "_image_path": str(p)} for i, (p, a) in enumerate(zip(paths, ["red", "green"]))]
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "two_items.yaml").write_text(TWO_ITEM_TASK.format(data=tmp_path / "data.jsonl"))
    (tmp_path / "task" / "two_items.py").write_text(TWO_ITEM_UTILS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets"), "HF_DATASETS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "lmms_eval", "--model", "evolmm", "--model_args", "pretrained=tiny",
                          "--tasks", "evolmm_two_items", "--include_path", str(tmp_path / "task"), "--batch_size", "2",
                          "--output_path", str(tmp_path / "out"), "--log_samples"],
                         env=env, capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("*_results.json")).read_text())
    assert results["n-samples"]["evolmm_two_items"]["effective"] == 2
    samples = [json.loads(line) for line in next((tmp_path / "out").rglob("*_samples_*.jsonl")).read_text().splitlines()]
    ours = evaluate(tiny_backbone, "chartqa", docs, role="base", max_new_tokens=4, progress=False, harness="0.7.3")
    assert [s["filtered_resps"] for s in sorted(samples, key=lambda s: s["doc_id"])] == [r["post"] for r in ours.rows]
    assert results["results"]["evolmm_two_items"]["relaxed_overall,none"] == pytest.approx(ours.summary["score"] / 100)


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


# The runner pinned with a scripted generator: known raw responses, hand-computed post-processing,
# extraction and scores (ChartQA: relaxed accuracy, 5% tolerance; MathVision: letter or option text).
CHARTQA_SCRIPT = [  # (question, gold, raw response, post, score)
    ("q1", "42", "thinking... <answer> 42 </answer> then \\boxed{7}", "42", 1.0),  # tag first, stripped
    ("q2", "42", "The value is \\boxed{43}.", "43", 1.0),  # boxed; 43 is within 5% of 42
    ("q3", "42", "\\boxed{45}", "45", 0.0),  # near miss: 7% off
    ("q4", "Yes", "  yes \n", "yes", 1.0),  # plain text, stripped, case-insensitive
    ("q5", "40", "40 apples", "40 apples", 0.0),  # not a number, not the string
]
MATHVISION_SCRIPT = [  # (question, options, gold, raw response, post, extracted, score)
    ("m1", ["1", "2", "3"], "C", "<answer>3</answer>", "3", "3", 1.0),  # the option's text
    ("m2", ["1", "2", "3"], "C", "so \\boxed{C} and \\boxed{A}", "C", "c", 1.0),  # first box only
    ("m3", ["1", "2", "3"], "C", "The answer is 2.", "The answer is 2.", "2", 0.0),
    ("m4", [], "12.5", "<answer>12.50</answer>", "12.50", "12.50", 1.0),  # equal at 2 decimals
]


@pytest.fixture
def scripted(monkeypatch):
    """Replace generation by a script: prompt -> raw response; records each call's settings."""
    import evolmm_lib.rollout as rollout
    from types import SimpleNamespace

    script, calls = {}, []

    def generate(backbone, role, images, prompts, **kw):
        calls.append(dict(kw, role=role, n=len(images)))
        return SimpleNamespace(texts=[script[p] for p in prompts])

    monkeypatch.setattr(rollout, "generate", generate)
    return script, calls


def test_runner_scores_the_post_processed_answer(scripted, tmp_path):
    from types import SimpleNamespace

    from conftest import make_images
    from evolmm_lib.evaluation import build_prompt

    script, calls = scripted
    image = str(make_images(tmp_path, 1)[0])
    docs = [{"id": q, "question": q, "answer": gold, "_image_path": image} for q, gold, *_ in CHARTQA_SCRIPT]
    for doc, (_, _, raw, *_) in zip(docs, CHARTQA_SCRIPT):
        script[build_prompt("chartqa", doc)] = raw
    res = evaluate(SimpleNamespace(name="scripted"), "chartqa", docs, batch_size=2, progress=False)
    assert [(r["response"], r["post"], r["extracted"], r["score"]) for r in res.rows] == \
        [(raw, post, post, score) for _, _, raw, post, score in CHARTQA_SCRIPT]
    assert res.summary["score"] == 60.0 and res.summary["n"] == 5  # 100 x mean(1, 1, 0, 1, 0)
    assert [c["n"] for c in calls] == [2, 2, 1]
    assert all(c["do_sample"] is False and c["max_new_tokens"] == 16 and c["role"] == "solver"
               and c["system"] == "You are a helpful assistant." for c in calls)

    docs = [{"id": q, "question": q, "options": o, "answer": g, "_image_path": image} for q, o, g, *_ in MATHVISION_SCRIPT]
    for doc, (*_, raw, _, _, _) in zip(docs, MATHVISION_SCRIPT):
        script[build_prompt("mathvision", doc)] = raw
    res = evaluate(SimpleNamespace(name="scripted"), "mathvision", docs, role="base", progress=False)
    assert [(r["post"], r["extracted"], r["score"]) for r in res.rows] == \
        [(post, extracted, score) for *_, post, extracted, score in MATHVISION_SCRIPT]
    assert res.summary["score"] == 75.0 and res.summary["role"] == "base" and calls[-1]["role"] is None


def test_the_judge_is_asked_once_per_item(scripted, tmp_path):
    """MathVista with a judge: one extraction call per item (the answer is extracted once, then scored)."""
    from types import SimpleNamespace

    from conftest import make_images
    from evolmm_lib.evaluation import build_prompt

    script, _ = scripted
    image = str(make_images(tmp_path, 1)[0])
    asked = []

    class CountingJudge:
        def extract(self, question, response):
            asked.append(response)
            return "B"

    docs = [{"pid": str(i), "question": "q", "choices": ["3", "5", "7"], "answer": "5", "question_type": "multi_choice",
             "answer_type": "text", "precision": None, "query": f"Question {i}", "_image_path": image} for i in range(3)]
    for doc in docs:
        script[build_prompt("mathvista", doc)] = "it is the middle one"
    res = evaluate(SimpleNamespace(name="scripted"), "mathvista", docs, judge=CountingJudge(), progress=False)
    assert asked == ["it is the middle one"] * 3
    assert [r["extracted"] for r in res.rows] == ["B"] * 3 and res.summary["score"] == 100.0
