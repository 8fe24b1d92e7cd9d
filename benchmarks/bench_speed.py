"""Training speed: steps/s, samples/s, generated tokens/s and peak memory, the kit beside the official script.

    python benchmarks/bench_speed.py                                     # tiny + random:qwen2.5-vl-3b@1, CPU
    python benchmarks/bench_speed.py --models tiny --official /work/official/train.py --rounds 3
    python benchmarks/bench_speed.py --models tiny --profile            # where the kit's step time goes
    python benchmarks/bench_speed.py --models random:qwen2.5-vl-7b --dtype bfloat16 --steps 5   # on a GPU

Each row is one whole process (load, one warm-up step, ``--steps`` timed steps; keep ``--steps`` a
multiple of k = 5 so every row holds the same share of Proposer updates). Modes: ``sequential`` is
the official per-sample loop (``update_mode="sequential"``), ``batched`` the kit's default; the
official script (``--official PATH`` or ``$EVOLMM_OFFICIAL_SCRIPT``; it must import
``AutoModelForImageTextToText``, transformers 5 has no ``AutoModelForVision2Seq``) runs the same
settings, and rounds alternate kit and official processes so machine load hits both alike.
Generation is held to the full budget on both sides (``min_new_tokens``), so every step generates
(1 + N) x max_new_tokens tokens and the figures compare equal work. ``batched-b4`` is the batched mode with
B = 4 images per step (``images_per_step=4``: 4 questions, one generate of 4 x N answers, one update), so a
step generates 4 x (1 + N) x max_new_tokens tokens. Peak memory is the process's max RSS on CPU (the process
itself included), ``max_memory_allocated`` on CUDA; beside it, ``est MiB`` is the kit's estimate for the row, in the same unit
(:func:`evolmm_lib.memory.training_step_gib`: weights, LoRA state, and the larger of the generation and update
phases for B x N rows; sequential updates one row at a time).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RESULT = "BENCH_RESULT "
MODES = {"sequential": ("sequential", 1), "batched": ("batched", 1), "batched-b4": ("batched", 4)}
"""mode -> (update_mode, images_per_step)"""
PROFILED = {  # label -> (module, qualified name) of the callables the profile times (inclusive)
    "generate (whole call)": ("transformers.generation.utils", "GenerationMixin.generate"),
    "  model forwards inside generate": ("transformers.models.qwen2_5_vl.modeling_qwen2_5_vl",
                                         "Qwen2_5_VLForConditionalGeneration.forward"),
    "processor passes": ("transformers.models.qwen2_5_vl.processing_qwen2_5_vl", "Qwen2_5_VLProcessor.__call__"),
    "vision tower (all calls)": ("transformers.models.qwen2_5_vl.modeling_qwen2_5_vl",
                                 "Qwen2_5_VisionTransformerPretrainedModel.forward"),
    "teacher-forced policy fwd": ("evolmm_lib.policy", "completion_logprobs_and_kl"),
    "teacher-forced reference fwd": ("evolmm_lib.policy", "reference_outputs"),
    "backward": ("torch", "Tensor.backward"),
    "AdamW step": ("torch.optim", "AdamW.step"),
    "decode (tokenizer)": ("transformers.tokenization_utils_base", "PreTrainedTokenizerBase.batch_decode"),
}


def write_images(folder: Path, side: int, n: int = 6) -> Path:
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = Image.new("RGB", (side, side), "white")
        ImageDraw.Draw(im).ellipse([side // 8, side // 8, side // 2 + 4 * i, side // 2], fill=("red", "blue", "green")[i % 3])
        im.save(folder / f"{i}.png")
    return folder


def peak_memory_mib(device: str) -> float:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summary(seconds: list[float], samples_per_step: int, tokens: int, device: str) -> dict:
    total = sum(seconds)
    return {"s_per_step": total / len(seconds), "steps_per_s": len(seconds) / total,
            "samples_per_s": samples_per_step * len(seconds) / total, "tokens_per_s": tokens / total,
            "peak_mib": peak_memory_mib(device), "device": device, "step_seconds": seconds}


# -- workers (one process each) -------------------------------------------------------------------
def run_kit(args) -> dict:
    import torch

    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.images import ImagePool
    from evolmm_lib.random_presets import hold_full_budget
    from evolmm_lib.trainer import EvoLMMTrainer

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="evolmm-speed-"))
    update_mode, images = MODES[args.mode]
    cfg = EvoLMMConfig(num_solver_samples=args.n, max_new_tokens_solver=args.tokens, max_new_tokens_proposer=args.tokens,
                       update_mode=update_mode, images_per_step=images, save_every=0, output_dir=str(tmp / "run"),
                       dtype=args.dtype, max_image_pixels=args.side * args.side)
    bb = load_backbone(args.model, backend="transformers", config=cfg)
    hold_full_budget(bb.model.generation_config)
    device = "cuda" if bb.device.type == "cuda" else "cpu"
    trainer = EvoLMMTrainer(bb, cfg, pool=ImagePool(str(write_images(tmp / "img", args.side)), cfg.seed))
    trainer.step()  # warm-up
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    timers = install_timers() if args.profile else None
    seconds, tokens = [], 0
    for _ in range(args.steps):
        t0 = time.perf_counter()
        records = trainer.step()
        tokens += sum(r["generated_tokens"] for r in records)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - t0)
    out = summary(seconds, images * args.n, tokens, device)
    out["estimate_mib"] = estimate_mib(bb.model.config, cfg, 1 if update_mode == "sequential" else images * args.n,
                                       args.side)
    if timers is not None:
        out["profile"] = {k: v / args.steps for k, v in timers[0].items()}
        out["profile_calls"] = {k: v / args.steps for k, v in timers[1].items()}
    return out


def estimate_mib(model_config, cfg, rows: int, side: int) -> float:
    """The kit's peak-memory estimate of one training step of ``rows`` completions in MiB (evolmm_lib.memory;
    MiB as the measured column, so the tiny model's few MiB do not print as 0.0 GiB)."""
    from evolmm_lib import memory
    from evolmm_lib.backbone import resolve_dtype

    shapes = memory.shapes_of(model_config)
    return 1024 * memory.training_step_gib(shapes, cfg.update, rows, cfg.max_new_tokens_solver,
                                    memory.image_tokens(side, side, shapes), r=cfg.lora_r,
                                    dtype_bytes=resolve_dtype(cfg.dtype).itemsize, chunk=cfg.kl_chunk_size)


def install_timers() -> tuple[dict[str, float], dict[str, int]]:
    """Wrap the callables of :data:`PROFILED` with inclusive wall-clock timers and call counts (outermost call only)."""
    import functools
    import importlib

    totals = {k: 0.0 for k in PROFILED}
    calls = {k: 0 for k in PROFILED}
    for label, (module, qualname) in PROFILED.items():
        owner = importlib.import_module(module)
        *path, attr = qualname.split(".")
        for p in path:
            owner = getattr(owner, p)
        fn = getattr(owner, attr)
        depth = [0]

        def timed(*a, __fn=fn, __label=label, __depth=depth, **kw):
            if __depth[0]:
                return __fn(*a, **kw)
            calls[__label] += 1
            __depth[0] += 1
            t0 = time.perf_counter()
            try:
                return __fn(*a, **kw)
            finally:
                totals[__label] += time.perf_counter() - t0
                __depth[0] -= 1

        setattr(owner, attr, functools.wraps(fn)(timed))
    return totals, calls


def run_official(args) -> dict:
    """The official script, unmodified, on the same settings; each logged step is time-stamped."""
    import torch

    from evolmm_lib.random_presets import hold_full_budget
    from evolmm_lib.tiny_model import ensure_tiny_model

    torch.set_num_threads(args.threads)
    if args.model != "tiny":
        raise SystemExit("the official script loads checkpoints from a folder: use --models tiny (or a real model)")
    spec = importlib.util.spec_from_file_location("official_train", args.official)
    official = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official)
    auto = official.AutoModelForImageTextToText

    class FullBudget:  # the same full-budget generation as the kit's rows
        @staticmethod
        def from_pretrained(*a, **kw):
            model = auto.from_pretrained(*a, **kw)
            hold_full_budget(model.generation_config)
            return model

    official.AutoModelForImageTextToText = FullBudget
    stamps = []
    trainer_cls = official.SQLM_VLM_Trainer
    log_step = trainer_cls._append_iter_log

    def stamped(self, record):
        stamps.append(time.perf_counter())
        return log_step(self, record)

    trainer_cls._append_iter_log = stamped
    tmp = Path(tempfile.mkdtemp(prefix="evolmm-official-"))
    tiny = str(ensure_tiny_model())
    sys.argv = ["train.py", "--data_dir", str(write_images(tmp / "img", args.side)), "--solver_model", tiny,
                "--proposer_model", tiny, "--device", "cpu", "--dtype", args.dtype, "--device_map", "cpu",
                "--total_steps", str(args.steps + 1), "--num_solver_samples", str(args.n),
                "--max_new_tokens_solver", str(args.tokens), "--max_new_tokens_proposer", str(args.tokens),
                "--use_lora_solver", "--use_lora_proposer", "--output_dir", str(tmp / "run"), "--save_every", "0",
                "--wandb_mode", "disabled"]
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        official.main()
    seconds = [b - a for a, b in zip(stamps, stamps[1:])]
    return summary(seconds, args.n, (1 + args.n) * args.tokens * len(seconds), "cpu")


# -- the parent: one process per row, alternated, one table -----------------------------------------
def spawn(args, role: str, model: str, mode: str = "batched", profile: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--worker", role, "--model", model, "--mode", mode, "--steps", str(args.steps),
           "--n", str(args.n), "--tokens", str(args.tokens), "--threads", str(args.threads), "--side", str(args.side),
           "--dtype", args.dtype] + (["--official", args.official] if role == "official" else []) + (
        ["--profile"] if profile else [])
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT)]
    if proc.returncode or not lines:
        raise SystemExit(f"{role} {model} {mode} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT):])


def print_row(name: str, r: dict) -> None:
    est = f"{r['estimate_mib']:10.0f}" if "estimate_mib" in r else f"{'-':>10s}"
    print(f"{name:44s} {r['s_per_step']:8.2f} {r['steps_per_s']:8.3f} {r['samples_per_s']:10.2f} "
          f"{r['tokens_per_s']:10.1f} {r['peak_mib']:10.0f} {est}  (step s: {' '.join(f'{s:.2f}' for s in r['step_seconds'])})",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["tiny", "random:qwen2.5-vl-3b@1"])
    ap.add_argument("--modes", nargs="+", default=["sequential", "batched"], choices=list(MODES))
    ap.add_argument("--steps", type=int, default=5, help="timed steps per process, after one warm-up step")
    ap.add_argument("--n", type=int, default=5, help="Solver samples per question N (official default 5)")
    ap.add_argument("--tokens", type=int, default=128, help="max new tokens, both roles (official default 128)")
    ap.add_argument("--side", type=int, default=224, help="image side in pixels")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared 2-core machine)")
    ap.add_argument("--dtype", default="float32", help="float32 on CPU; bfloat16 on a GPU")
    ap.add_argument("--rounds", type=int, default=1, help="alternations of kit and official processes")
    ap.add_argument("--official", default=os.environ.get("EVOLMM_OFFICIAL_SCRIPT"),
                    help="path of the official train.py to run beside the kit (tiny only)")
    ap.add_argument("--profile", action="store_true", help="time generate / forwards / processor inside the kit")
    ap.add_argument("--worker", choices=["kit", "official"], help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="batched", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(RESULT + json.dumps(run_kit(args) if args.worker == "kit" else run_official(args)), flush=True)
        return
    if args.official and not Path(args.official).is_file():
        raise SystemExit(f"--official {args.official}: no such file")
    print(f"N={args.n}, {args.tokens} new tokens (full budget), LoRA both roles, k=5, image {args.side}px, "
          f"{args.steps} timed steps/process, {args.threads} thread(s), {args.dtype}; B (images/step) = 1, 4 in batched-b4")
    print(f"{'row':44s} {'s/step':>8s} {'steps/s':>8s} {'samples/s':>10s} {'gen tok/s':>10s} {'peak MiB':>10s} "
          f"{'est MiB':>10s}")
    for model in args.models:
        per_round: dict[str, list[dict]] = {}
        for rnd in range(args.rounds):
            for mode in args.modes:
                r = spawn(args, "kit", model, mode)
                per_round.setdefault(f"kit {mode}", []).append(r)
                print_row(f"{model} kit {mode} (round {rnd + 1})", r)
            if args.official and model == "tiny":
                r = spawn(args, "official", model)
                per_round.setdefault("official", []).append(r)
                print_row(f"{model} official script (round {rnd + 1})", r)
        if "official" in per_round:
            off = statistics.median(r["s_per_step"] for r in per_round["official"])
            for key in (k for k in per_round if k.startswith("kit")):
                kit = statistics.median(r["s_per_step"] for r in per_round[key])
                print(f"ratio {model}: official {off:.2f} s/step / {key} {kit:.2f} s/step = {off / kit:.2f}x "
                      f"(medians over {args.rounds} round(s))", flush=True)
        if args.profile:
            for mode in args.modes:
                r = spawn(args, "kit", model, mode, profile=True)
                print(f"profile {model} kit {mode}: {r['s_per_step']:.2f} s/step (inclusive, per step; nested "
                      "calls overlap: the vision tower runs inside generate and the forwards)")
                for label, s in r["profile"].items():
                    print(f"    {label:34s} {s:7.3f} s  {100 * s / r['s_per_step']:5.1f} %  "
                          f"{r['profile_calls'][label]:7.1f} calls/step")


if __name__ == "__main__":
    main()
