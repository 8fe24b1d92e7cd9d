"""A full-depth real shape on the CPU: ``random:qwen2.5-vl-3b`` (36 layers, 151,936-token vocabulary) in bf16,
loaded and trained one step, with its peak memory beside the kit's estimate (:mod:`evolmm_lib.memory`).

    OMP_NUM_THREADS=2 python benchmarks/bench_full_depth.py --output papers/results/full_depth_3b.json

One :meth:`EvoLMMTrainer.step` (backend transformers, LoRA on both roles, the Proposer updated in the same step
so both adapters hold gradients and AdamW state) with a small N, token budget and image. Memory is the process's
resident set: a sampling thread records its peak during the load and during the step (``psutil`` when installed,
else ``/proc/self/statm``), and ``ru_maxrss`` is reported as well. The process's baseline after the imports
(torch, transformers) is subtracted before the comparison, because the estimate counts tensors only.
Weights are random; the tokenizer is the tiny model's (``evolmm_lib/random_presets.py``), so prompts are shorter
in tokens than with Qwen's tokenizer, while image tokens and every tensor shape are the real ones.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
GiB = 1024**3


def rss_bytes() -> int:
    """Resident set size of this process now."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Peak resident set over a ``with`` block, sampled every ``interval`` seconds by a thread."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = next(int(ln.split()[1]) * 1024 for ln in Path("/proc/meminfo").read_text().splitlines()
               if ln.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "memory_gib": round(mem / GiB, 1), "cpu": cpu, "python": platform.python_version()}


def write_image(folder: Path, side: int) -> Path:
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", (side, side), "white")
    ImageDraw.Draw(im).rectangle([side // 8, side // 8, side // 2, side // 2], fill="red")
    im.save(folder / "0.png")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="random:qwen2.5-vl-3b")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--n", type=int, default=2, help="Solver samples per question N")
    ap.add_argument("--tokens", type=int, default=8, help="max new tokens, both roles")
    ap.add_argument("--side", type=int, default=112, help="image side in pixels")
    ap.add_argument("--output", help="write the figures to this JSON file")
    args = ap.parse_args()

    import torch
    import transformers

    from evolmm_lib import memory
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.images import ImagePool
    from evolmm_lib.trainer import EvoLMMTrainer

    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    tmp = Path(tempfile.mkdtemp(prefix="evolmm-full-depth-"))
    cfg = EvoLMMConfig(num_solver_samples=args.n, max_new_tokens_solver=args.tokens,
                       max_new_tokens_proposer=args.tokens, proposer_update_freq=1, save_every=0,
                       output_dir=str(tmp / "run"), dtype=args.dtype, backend="transformers",
                       max_image_pixels=args.side * args.side)
    baseline = rss_bytes()
    t0 = time.perf_counter()
    with PeakRSS() as load_peak:
        bb = load_backbone(args.model, backend="transformers", config=cfg)
    load_s = time.perf_counter() - t0
    after_load = rss_bytes()
    trainer = EvoLMMTrainer(bb, cfg, pool=ImagePool(str(write_image(tmp / "img", args.side)), cfg.seed))
    t0 = time.perf_counter()
    with PeakRSS() as step_peak:
        (record,) = trainer.step()
    step_s = time.perf_counter() - t0

    shapes = memory.shapes_of(bb.model.config)
    queue = getattr(trainer.questions, "queue", None)  # the Proposer generate of this step's question
    gen = queue.generation if queue is not None else None
    prompt_tokens = int(gen.prompt_inputs["input_ids"].shape[1]) if gen is not None else None
    image_tokens = memory.image_tokens(args.side, args.side, shapes)
    dtype_bytes = torch.finfo(getattr(torch, args.dtype)).bits // 8
    state = memory.per_gpu_gib(shapes, "lora", 1, False, r=cfg.lora_r, dtype_bytes=dtype_bytes)
    text_tokens = prompt_tokens - image_tokens if prompt_tokens else memory.SOLVER_TEXT_TOKENS
    step_terms = memory.step_bytes(shapes, args.n, args.tokens, image_tokens, text_tokens, dtype_bytes,
                                   cfg.kl_chunk_size)
    measured_load = (load_peak.peak - baseline) / GiB
    measured_step = (step_peak.peak - baseline) / GiB
    result = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": f"OMP_NUM_THREADS={threads} python " + shlex.join(["benchmarks/bench_full_depth.py", *sys.argv[1:]]),
        "machine": machine(), "torch": torch.__version__, "transformers": transformers.__version__,
        "torch_threads": threads,
        "setting": {"model": args.model, "dtype": args.dtype, "n": args.n, "max_new_tokens": args.tokens,
                    "image_side": args.side, "image_tokens": image_tokens, "prompt_tokens": prompt_tokens,
                    "update": "lora", "lora_r": cfg.lora_r, "backend": "transformers", "proposer_updated": record[
                        "proposer_updated"], "generated_tokens": record["generated_tokens"]},
        "parameters": memory.model_parameters(shapes),
        "seconds": {"load": round(load_s, 1), "step": round(step_s, 1),
                    **{k[len("seconds_"):]: round(v, 1) for k, v in record.items() if k.startswith("seconds_")
                       and k != "seconds_step"}},
        "measured_gib": {"process_baseline": round(baseline / GiB, 2), "after_load": round(after_load / GiB, 2),
                         "peak_load": round(load_peak.peak / GiB, 2), "peak_step": round(step_peak.peak / GiB, 2),
                         "ru_maxrss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GiB, 2),
                         "load_above_baseline": round(measured_load, 2),
                         "step_above_baseline": round(measured_step, 2)},
        "estimate_gib": {"weights": round(memory.weight_bytes(shapes, dtype_bytes) / GiB, 2),
                         "weights_lora_grads_adamw (per_gpu_gib)": round(state, 2),
                         **{f"step: {k}": round(v / GiB, 3) for k, v in step_terms.items()},
                         "total (training_step_gib)": round(memory.training_step_gib(
                             shapes, "lora", args.n, args.tokens, image_tokens, text_tokens, r=cfg.lora_r,
                             dtype_bytes=dtype_bytes, chunk=cfg.kl_chunk_size), 2)},
    }
    print(f"{args.model} ({result['parameters'] / 1e9:.2f}B parameters), {args.dtype}, N={args.n}, "
          f"{args.tokens} new tokens, {args.side}px image ({image_tokens} image tokens, {prompt_tokens} prompt tokens), "
          f"{threads} thread(s)")
    print(f"load {load_s:.1f} s, step {step_s:.1f} s")
    print(f"{'memory (GiB)':44s} {'measured':>9s} {'estimate':>9s}")
    print(f"{'after load, above the process baseline':44s} {(after_load - baseline) / GiB:9.2f} "
          f"{memory.weight_bytes(shapes, dtype_bytes) / GiB:9.2f}  (weights)")
    print(f"{'peak of the step, above the baseline':44s} {measured_step:9.2f} "
          f"{result['estimate_gib']['total (training_step_gib)']:9.2f}  (weights, LoRA state, step terms)")
    print(f"{'  of which weights + LoRA + grads + AdamW':44s} {'':9s} {state:9.2f}")
    for k, v in step_terms.items():
        print(f"{'  of which ' + k:44s} {'':9s} {v / GiB:9.2f}")
    print(f"process baseline (imports) {baseline / GiB:.2f} GiB; peak during load {load_peak.peak / GiB:.2f} GiB; "
          f"ru_maxrss {result['measured_gib']['ru_maxrss']:.2f} GiB")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
        print("wrote", args.output)


if __name__ == "__main__":
    main()
