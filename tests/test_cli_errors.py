"""Every user mistake on the command line: one readable line on stderr, exit status 2, no traceback.

Each case runs ``python -m evolmm_lib ...`` in a real subprocess (offline, as in CI).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO, make_images


def _run(args, tmp_path, **env):
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **env}
    return subprocess.run([sys.executable, "-m", "evolmm_lib", *args], env=full_env, capture_output=True, text=True,
                          timeout=600, cwd=str(tmp_path))


def _error_lines(stderr: str) -> list[str]:
    """stderr without the library's INFO log lines and progress bars."""
    return [ln for ln in stderr.splitlines()
            if ln.strip() and not ln.startswith(("INFO ", "WARNING ", "W1", "Loading weights"))]


def _assert_one_line(run, *needles):
    lines = _error_lines(run.stderr)
    assert run.returncode == 2, (run.returncode, run.stderr[-3000:])
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert len(lines) == 1, lines
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_backbone):
    """A real tiny checkpoint folder (solver/ and proposer/ adapters)."""
    folder = tmp_path_factory.mktemp("ckpt") / "checkpoint-2"
    tiny_backbone.save_adapters(folder)
    return folder


CASES = {  # name -> (args, expected substrings); {tmp} is the test's temporary folder
    "unknown benchmark": (["evaluate", "--benchmark", "mmlu"], ["unknown benchmark 'mmlu'", "chartqa"]),
    "unknown model": (["evaluate", "--benchmark", "chartqa", "--data-dir", "{data}", "--model", "qwen-7b-please"],
                      ["unknown model 'qwen-7b-please'"]),
    "hub model offline": (["evaluate", "--benchmark", "chartqa", "--data-dir", "{data}", "--model", "qwen2.5-vl-7b"],
                          ["not in the local Hugging Face cache", "HF_HUB_OFFLINE"]),
    "folder that is not a model": (["evaluate", "--benchmark", "chartqa", "--data-dir", "{data}", "--model", "{tmp}"],
                                   ["no config.json"]),
    "missing data folder": (["evaluate", "--benchmark", "chartqa", "--data-dir", "{tmp}/nowhere"], ["no such folder"]),
    "folder without data.jsonl": (["evaluate", "--benchmark", "chartqa", "--data-dir", "{tmp}"], ["no data.jsonl"]),
    "no local sample, hub offline": (["evaluate", "--benchmark", "ai2d"], ["cannot load lmms-lab/ai2d", "--data-dir"]),
    "missing adapter folder": (["evaluate", "--benchmark", "chartqa", "--data-dir", "{data}", "--adapters", "{tmp}/none"],
                               ["no adapter_config.json"]),
    "partial adapter folder": (["evaluate", "--benchmark", "chartqa", "--data-dir", "{data}", "--adapters", "{partial}"],
                               ["no adapter_model.safetensors"]),
    "corrupt adapter weights": (["evaluate", "--benchmark", "chartqa", "--data-dir", "{data}", "--adapters", "{corrupt}"],
                                ["cannot load the adapters"]),
    "bad flag": (["evaluate", "--benchmark", "chartqa", "--harness", "0.6"], ["invalid choice: '0.6'"]),
    "corrupt checkpoint on resume": (["train", "--model", "tiny", "--steps", "3", "--data-dir", "{data}/images",
                                      "--output-dir", "{run}", "--resume"], ["cannot read the trainer state"]),
    "unknown config field": (["train", "--model", "tiny", "--set", "gamma=2"], ["gamma"]),
    "missing image pool": (["train", "--model", "tiny", "--steps", "1", "--data-dir", "{tmp}/nowhere",
                            "--output-dir", "{tmp}/out"], ["{tmp}/nowhere"]),
    "miniature merge without results": (["miniature", "--merge", "{tmp}"], ["no results.json"]),
    "miniature unknown override": (["miniature", "--set", "gamma=2"], ["gamma"]),
    "miniature unknown arm override": (["miniature", "--set", "oficial.lr=1e-4"], ["unknown arm", "oficial"]),
    "miniature bad arm override": (["miniature", "--set", "official.lr=abc"], ["lr"]),
    "notebooks that do not exist": (["notebooks", "--only", "99", "--output-dir", "{tmp}/nb"], ["no notebooks matching"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_mistake_is_one_line(name, tmp_path, checkpoint):
    import json
    import shutil

    data = tmp_path / "data"
    make_images(data / "images", 1)
    (data / "data.jsonl").write_text(json.dumps({"question": "q", "answer": "1", "image": "images/img_00.png"}) + "\n")
    partial = tmp_path / "partial"
    shutil.copytree(checkpoint, partial)
    (partial / "proposer" / "adapter_model.safetensors").unlink()
    corrupt = tmp_path / "corrupt"
    shutil.copytree(checkpoint, corrupt)
    (corrupt / "solver" / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    run_dir = tmp_path / "run"
    shutil.copytree(checkpoint, run_dir / "checkpoint-2")
    (run_dir / "checkpoint-2" / "trainer_state.pt").write_bytes(b"\x80\x02truncated")
    places = {"tmp": tmp_path, "data": data, "partial": partial, "corrupt": corrupt, "run": run_dir}
    args, needles = CASES[name]
    fill = lambda s: s.format(**places)  # noqa: E731
    env = {"HF_HOME": str(tmp_path / "hf_home"), "EVOLMM_BENCHMARKS_DIR": ""}  # nothing cached, no local samples
    _assert_one_line(_run([fill(a) for a in args], tmp_path, **env), *[fill(n) for n in needles])
