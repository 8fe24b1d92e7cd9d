"""Scale-out: the same loop under `accelerate launch` with 2 CPU processes (gloo), gradients averaged."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import REPO, make_images

SCRIPT = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.trainer import EvoLMMTrainer
    cfg = EvoLMMConfig.from_yaml(sys.argv[1])
    tr = EvoLMMTrainer(load_backbone(config=cfg), cfg)
    recs = tr.train()
    torch.save({"solver": [p.detach() for p in tr.backbone.trainable_parameters("solver")],
                "proposer": [p.detach() for p in tr.backbone.trainable_parameters("proposer")],
                "images": [r["image"] for r in recs], "all": [r["images_all_ranks"] for r in recs],
                "beta": tr.solver.beta, "baseline": tr.solver.baseline},
               f"{cfg.output_dir}/rank{tr.dist.rank}.pt")
""")


@pytest.mark.slow
def test_two_cpu_processes(tmp_path):
    from evolmm_lib.config import EvoLMMConfig

    make_images(tmp_path / "images", 6)
    out = tmp_path / "run"
    cfg = EvoLMMConfig(data_dir=str(tmp_path / "images"), output_dir=str(out), num_solver_samples=2,
                       max_new_tokens_solver=6, max_new_tokens_proposer=6, total_steps=2, proposer_update_freq=2,
                       save_every=0, lr=1e-2)
    conf = cfg.save_yaml(tmp_path / "c.yaml")
    (tmp_path / "script.py").write_text(SCRIPT)
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    # `--cpu` alone starts one process; the multi-process launcher with no GPU visible runs 2 CPU
    # processes (torchrun environment), and ACCELERATE_USE_CPU makes accelerate pick gloo.
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "ACCELERATE_USE_CPU": "true"}
    cmd = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", "29517", str(tmp_path / "script.py"), str(conf)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    s0, s1 = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    assert all(a != b for a, b in zip(s0["images"], s1["images"]))  # each process took its own image
    assert s0["all"] == s1["all"] and len(set(sum(s0["all"], []))) == 4
    for role in ("solver", "proposer"):  # gradients all-reduced: both processes hold the same adapters
        assert all(torch.equal(a, b) for a, b in zip(s0[role], s1[role]))
    assert any(p.abs().sum() > 0 for p in s0["solver"][1::2])  # LoRA B moved from zero
    assert (s0["beta"], s0["baseline"]) == (s1["beta"], s1["baseline"])
    assert (out / "checkpoint-2" / "solver" / "adapter_config.json").is_file()
    assert len((out / "log.jsonl").read_text().splitlines()) == 2  # rank 0 logs
