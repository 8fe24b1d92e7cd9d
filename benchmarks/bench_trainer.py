"""Trainer throughput on the tiny backbone: batched vs sequential (official) update, N, images per step
and image-side scaling.

    python benchmarks/bench_trainer.py [--steps 5] [--threads 1] [--only images]

Prints steps/s, Solver samples/s, generated tokens/s and peak RSS (process-wide, so it only grows across
rows) for the official settings (N=5, 128 new tokens, LoRA on both roles, Proposer update every k=5
steps), then N ∈ {1,2,5,8}, images per step B ∈ {1,2,4} and image side ∈ {112,224,448}, batched
(``--only images``: the B rows alone). After one warm-up step, ``--steps`` (keep it
a multiple of k) are timed, so each row holds the same share of Proposer generates and updates.
On a shared 2-core machine use ``--threads 1``: oversubscribed OpenMP threads distort the figures.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evolmm_lib.backbone import load_backbone  # noqa: E402
from evolmm_lib.config import EvoLMMConfig  # noqa: E402
from evolmm_lib.images import ImagePool  # noqa: E402
from evolmm_lib.trainer import EvoLMMTrainer  # noqa: E402


def write_images(folder: Path, side: int, n: int = 4) -> Path:
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = Image.new("RGB", (side, side), "white")
        ImageDraw.Draw(im).ellipse([side // 8, side // 8, side // 2 + 4 * i, side // 2], fill=("red", "blue", "green", "black")[i])
        im.save(folder / f"{i}.png")
    return folder


def bench(backbone, cfg: EvoLMMConfig, images: Path, steps: int) -> dict:
    trainer = EvoLMMTrainer(backbone, cfg, pool=ImagePool(str(images), cfg.seed), output_dir=cfg.output_dir)
    trainer.step()  # warm-up
    t0, tokens = time.perf_counter(), 0
    for _ in range(steps):
        tokens += sum(r["generated_tokens"] for r in trainer.step())  # one record per image
    dt = time.perf_counter() - t0
    samples = steps * cfg.images_per_step * cfg.num_solver_samples
    return {"steps_per_s": steps / dt, "samples_per_s": samples / dt, "tokens_per_s": tokens / dt,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", choices=("all", "images"), default="all", help="images: only the B ∈ {1,2,4} rows")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="evolmm-bench-"))
    base = EvoLMMConfig(num_solver_samples=5, max_new_tokens_solver=128, max_new_tokens_proposer=128,
                        save_every=0, output_dir=str(tmp / "run"))
    backbone = load_backbone("tiny", config=base)
    side224 = write_images(tmp / "224", 224)
    rows = []
    print(f"{'setting':34s} {'steps/s':>8s} {'samples/s':>10s} {'gen tok/s':>10s} {'peak RSS MiB':>13s}", flush=True)

    def row(name, cfg, images):
        r = bench(backbone, cfg, images, args.steps)
        rows.append((name, r))
        print(f"{name:34s} {r['steps_per_s']:8.3f} {r['samples_per_s']:10.2f} {r['tokens_per_s']:10.1f} "
              f"{r['peak_rss_mib']:13.0f}", flush=True)
        return r

    def image_rows():
        for n_img in (1, 2, 4):
            row(f"N=5 batched, B={n_img} images/step", base.replace(images_per_step=n_img), side224)

    if args.only == "images":
        return image_rows()
    b = row("N=5 batched (kit)", base, side224)
    s = row("N=5 sequential (official)", base.replace(update_mode="sequential"), side224)
    print(f"speed-up batched / sequential at N=5: {b['steps_per_s'] / s['steps_per_s']:.2f}x", flush=True)
    for n in (1, 2, 5, 8):
        row(f"N={n} batched, side 224", base.replace(num_solver_samples=n), side224)
    image_rows()
    for side in (112, 224, 448):
        row(f"N=5 batched, side {side}", base, write_images(tmp / str(side), side))


if __name__ == "__main__":
    main()
