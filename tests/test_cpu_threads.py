"""``cpu_threads``: the small CPU presets run on one torch thread unless OMP_NUM_THREADS says otherwise; other
models keep torch's default. Each case in its own process, since torch's thread count is process-wide."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO
from evolmm_lib.presets import model_preset

PROBE = """
import torch
from evolmm_lib.backbone import load_backbone
from evolmm_lib.presets import resolve_config
cfg = resolve_config(("flag", {"model": "tiny", "backend": "transformers"})).config
before = torch.get_num_threads()
load_backbone(config=cfg)
print(before, torch.get_num_threads())
"""


def _threads(env_extra: dict) -> tuple[int, int]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(env_extra, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = map(int, out.stdout.split()[-2:])
    return before, after


def test_presets_say_one_thread_for_the_small_cpu_models_only():
    assert model_preset("tiny").training["cpu_threads"] == 1
    assert model_preset("miniature").training["cpu_threads"] == 1
    assert "cpu_threads" not in model_preset("qwen2.5-vl-7b").training


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: torch's default is already one thread")
def test_the_tiny_preset_loads_onto_one_thread_and_omp_num_threads_wins():
    before, after = _threads({})
    assert before >= 2 and after == 1
    assert _threads({"OMP_NUM_THREADS": "2"}) == (2, 2)
