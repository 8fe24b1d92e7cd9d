"""Per-GPU memory of the weights, gradients and AdamW state for the shipped scale-out configs.

    python configs/accelerate/memory.py            # the table in configs/accelerate/README.md

The formulas live in :mod:`evolmm_lib.memory` (read its docstring for what is counted).
"""

from __future__ import annotations

from evolmm_lib.memory import PUBLIC, model_parameters, per_gpu_gib

CONFIGS = [  # (accelerate config, model, update, GPUs, sharded)
    ("lora-7b-1gpu.yaml", "qwen2.5-vl-7b", "lora", 1, False),
    ("lora-7b-8gpu-ddp.yaml", "qwen2.5-vl-7b", "lora", 8, False),
    ("lora-72b-device-map.yaml", "qwen2.5-vl-72b", "lora", 8, True),
    ("full-7b-8gpu-fsdp.yaml", "qwen2.5-vl-7b", "full", 8, True),
]


def main() -> None:
    print("| config | model | params | update | GPUs | weights+grads+AdamW per GPU |")
    print("|---|---|---|---|---|---|")
    for name, model, update, gpus, sharded in CONFIGS:
        s = PUBLIC[model]
        params = model_parameters(s) / 1e9
        print(f"| `{name}` | {model} | {params:.2f} B | {update} | {gpus} | "
              f"{per_gpu_gib(s, update, gpus, sharded):.1f} GiB |")


if __name__ == "__main__":
    main()
