"""Run the official ``src/train.py`` and the kit's ``recipe="official"`` on the same tiny setting, and compare.

The official script is never part of this repository: pass its path (``EVOLMM_OFFICIAL_SCRIPT``).
To run it on transformers 5, rename ``AutoModelForVision2Seq`` to ``AutoModelForImageTextToText`` in
a copy, nothing else. ``python tests/official_parity.py --official-script PATH --write-fixtures``
regenerates ``tests/fixtures/official/`` (see its README).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "official"

# Qwen2.5-VL-*-Instruct's generation_config.json sampling fields (the public checkpoints ship these).
INSTRUCT_SAMPLING = {"do_sample": True, "top_k": 1, "top_p": 0.001, "temperature": 0.1, "repetition_penalty": 1.05}

# One setting per generation config: (name, generation config, seed, lr, steps). The proposer
# updates at step 5 (official default every 5 steps); max_new_tokens 32 keeps CI short.
SETTINGS = {
    "instruct": dict(generation=INSTRUCT_SAMPLING, seed=7, lr=5e-3, steps=6),
    "sampling": dict(generation=None, seed=3, lr=1e-2, steps=6),
}
MAX_NEW_TOKENS = 32

# Both scripts run under one numerical environment that does not depend on the CPU: float32 kernels pick their
# SIMD width (AVX2, AVX-512) and split their sums by thread count, and a change in the last bit of a logit changes
# the sampled tokens a few steps later (the fixtures of 2026-11-26, written on an AVX2 machine, no longer
# matched on an AVX-512 one). One thread, ATen's baseline kernels, MKL's conditional-numerical-reproducibility
# mode and oneDNN held to SSE4.1 give the same bits on any x86-64 CPU (about 2x slower; ~10 s a run here).
PINNED_NUMERICS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "default",
                   "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"}


def build_models(root: Path) -> dict[str, Path]:
    """The embedded tiny backbone twice: its own sampling config, and a Qwen-Instruct-style one."""
    from evolmm_lib.tiny_model import ensure_tiny_model

    tiny = ensure_tiny_model()
    out = {}
    for name, setting in SETTINGS.items():
        dst = root / f"tiny-{name}"
        if not dst.is_dir():
            shutil.copytree(tiny, dst)
            if setting["generation"]:
                gc_path = dst / "generation_config.json"
                gc = json.loads(gc_path.read_text())
                gc.update(setting["generation"])
                gc_path.write_text(json.dumps(gc, indent=2))
        out[name] = dst
    return out


def build_pool(root: Path) -> Path:
    """Images laid out to exercise the official scan: two first-level subfolders (one nested), root
    files that the official scan ignores, a hidden file, names whose string and path orders differ."""
    from PIL import Image, ImageDraw

    if root.is_dir():
        return root
    colours = ["red", "green", "blue", "orange", "purple", "black", "cyan", "pink"]
    files = ["a/x1.png", "a/deep/x2.jpg", "a-b/y1.png", "a-b/Y0.png", "a-b/.hidden.png", "root.png", "a/x0.PNG"]
    for i, rel in enumerate(files):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        size = (56 + 28 * (i % 3), 56 + 28 * ((i + 1) % 2))
        im = Image.new("RGB", size, "white")
        ImageDraw.Draw(im).rectangle([4 + 3 * i, 4, 30 + 3 * i, 30], fill=colours[i % len(colours)])
        im.save(path)
    return root


def official_command(script: str, model: Path, pool: Path, out: Path, seed: int, lr: float, steps: int) -> list[str]:
    return [sys.executable, str(script), "--data_dir", str(pool), "--solver_model", str(model),
            "--proposer_model", str(model), "--use_lora_solver", "--use_lora_proposer", "--lora_dropout", "0",
            "--seed", str(seed), "--lr", str(lr), "--total_steps", str(steps), "--save_every", str(steps),
            "--max_new_tokens_solver", str(MAX_NEW_TOKENS), "--max_new_tokens_proposer", str(MAX_NEW_TOKENS),
            "--device", "cpu", "--output_dir", str(out), "--wandb_run_name", "run"]


def kit_command(model: Path, pool: Path, out: Path, seed: int, lr: float, steps: int) -> list[str]:
    return [sys.executable, "-m", "evolmm_lib", "train", "--model", str(model), "--data-dir", str(pool),
            "--steps", str(steps), "--output-dir", str(out), "--set", "recipe=official", "--set", f"seed={seed}",
            "--set", f"lr={lr}", "--set", "lora_dropout=0", "--set", f"save_every={steps}",
            "--set", f"max_new_tokens_solver={MAX_NEW_TOKENS}", "--set", f"max_new_tokens_proposer={MAX_NEW_TOKENS}"]


def run(cmd: list[str], cwd: Path | None = None) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO),
           **PINNED_NUMERICS}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def official_records(out: Path, pool: Path) -> list[dict]:
    """The official iter_log.jsonl as the kit's log fields (image relative to the pool)."""
    rows = [json.loads(l) for l in (out / "run" / "iter_log.jsonl").read_text().splitlines() if l.strip()]
    root = os.path.abspath(pool)
    return [{"step": r["step"], "image": os.path.relpath(r["image_path"], root), "question": r["proposer_question"],
             "solver_answers": r["solver_answers_raw"], "solver_rewards_continuous": r["solver_rewards_soft"],
             "proposer_reward": r["proposer_reward_gauss"]} for r in rows]


def kit_records(out: Path, pool: Path) -> list[dict]:
    rows = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines() if l.strip()]
    root = os.path.abspath(pool)
    return [{"step": r["step"], "image": os.path.relpath(r["image"], root), "question": r["question"],
             "solver_answers": r["solver_answers"], "solver_rewards_continuous": r["solver_rewards_continuous"],
             "proposer_reward": r["proposer_reward"]} for r in rows]


def official_adapters(out: Path, steps: int) -> dict[str, Path]:
    """Official shared-backbone checkpoint: solver = adapter "default" in solver/, proposer in solver/proposer/."""
    solver = out / "run" / f"step_{steps:05d}" / "solver"
    return {"solver": solver, "proposer": solver / "proposer"}


def kit_adapters(out: Path, steps: int) -> dict[str, Path]:
    return {r: out / f"checkpoint-{steps}" / r for r in ("solver", "proposer")}


def official_final_state(out: Path, steps: int) -> dict[str, float]:
    """β and baseline of both roles after the last step (official trainer_state.pt)."""
    import torch

    st = torch.load(out / "run" / f"step_{steps:05d}" / "trainer_state.pt", map_location="cpu", weights_only=False)
    return {"solver_beta": st["solver_kl_coef"], "proposer_beta": st["proposer_kl_coef"],
            "solver_baseline": st["solver_baseline"], "proposer_baseline": st["proposer_baseline"]}


def kit_final_state(out: Path, steps: int) -> dict[str, float]:
    from evolmm_lib.checkpoint import load_state

    st = load_state(out / f"checkpoint-{steps}")
    return {f"{r}_{k}": st[r][k] for r in ("solver", "proposer") for k in ("beta", "baseline")}


def load_adapter(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def adapter_summary(folder: Path) -> dict[str, list[float]]:
    """Per tensor: sum, sum of squares and 6 fixed entries (enough to pin an adapter in a small file)."""
    import torch

    out = {}
    for name, t in sorted(load_adapter(folder).items()):
        flat = t.double().flatten()
        picks = torch.linspace(0, flat.numel() - 1, 6).long()
        out[name] = [flat.sum().item(), (flat ** 2).sum().item()] + flat[picks].tolist()
    return out


def write_fixtures(script: str, work: Path) -> None:
    models = build_models(work / "models")
    pool = build_pool(work / "pool")
    for name, s in SETTINGS.items():
        out = work / f"official-{name}"
        shutil.rmtree(out, ignore_errors=True)
        run(official_command(script, models[name], pool, out, s["seed"], s["lr"], s["steps"]), cwd=work)
        data = {"setting": {**s, "max_new_tokens": MAX_NEW_TOKENS, "lora_dropout": 0.0},
                "records": official_records(out, pool),
                "final_state": official_final_state(out, s["steps"]),
                "adapters": {r: adapter_summary(p) for r, p in official_adapters(out, s["steps"]).items()}}
        FIXTURES.mkdir(parents=True, exist_ok=True)
        (FIXTURES / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {FIXTURES / (name + '.json')}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--official-script", required=True)
    p.add_argument("--work-dir", default="/tmp/evolmm-official")
    p.add_argument("--write-fixtures", action="store_true")
    a = p.parse_args()
    sys.path.insert(0, str(REPO))
    if a.write_fixtures:
        write_fixtures(a.official_script, Path(a.work_dir))
