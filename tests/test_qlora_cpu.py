"""QLoRA on the CPU (bitsandbytes nf4): a 4-bit tiny run trains, checkpoints, resumes bit for bit and evaluates."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from conftest import make_images
from evolmm_lib import checkpoint as ckpt
from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.trainer import train


def is_4bit(model) -> bool:
    """True when bitsandbytes' 4-bit layers hold the base weights."""
    return any(type(m).__name__ == "Linear4bit" for m in model.modules())


def write_chartqa_folder(folder: Path, n: int = 2) -> Path:
    """A local benchmark folder as ``evaluate --data-dir`` reads it: ``data.jsonl`` + images."""
    paths = make_images(folder / "images", n)
    rows = [{"id": str(i), "question": "What colour is the square?", "answer": "red", "image": f"images/{p.name}"}
            for i, p in enumerate(paths)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def lines_without_timings(log: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("seconds")}
            for line in log.read_text().splitlines()]


@pytest.mark.slow
def test_qlora_run_trains_checkpoints_resumes_and_evaluates(tmp_path, capsys):
    make_images(tmp_path / "images", 3)
    cfg = EvoLMMConfig(update="qlora", backend="transformers", data_dir=str(tmp_path / "images"),
                       output_dir=str(tmp_path / "straight"), num_solver_samples=2, max_new_tokens_solver=6,
                       max_new_tokens_proposer=6, proposer_update_freq=1, lr=1e-2, total_steps=2, save_every=1,
                       max_checkpoints=2)
    straight = train(cfg)
    backbone = straight.backbone
    assert backbone.is_lora and is_4bit(backbone.model)
    assert all("lora_" in n for n, p in backbone.model.named_parameters() if p.requires_grad)
    records = lines_without_timings(Path(cfg.output_dir) / "log.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        assert r["skipped_updates"] == 0 and r["proposer_updated"]
        assert all(math.isfinite(r[k]) for k in ("loss_solver", "loss_proposer", "kl_solver", "grad_norm_solver"))
    assert records[1]["kl_solver"] > 0  # step 1 moved the Solver's LoRA away from the 4-bit base (π_ref)
    last = Path(cfg.output_dir) / "checkpoint-2"
    assert ckpt.checkpoint_kind(last) == "qlora" and (last / "solver" / "adapter_model.safetensors").is_file()

    # resume from checkpoint-1 of a copy: step 2 again, to the same bytes and the same log line
    resumed = tmp_path / "resumed"
    shutil.copytree(cfg.output_dir, resumed)
    shutil.rmtree(resumed / "checkpoint-2")
    again = train(cfg.replace(output_dir=str(resumed)), resume=True)
    assert again.global_step == 2 and is_4bit(again.backbone.model)
    for role in ("solver", "proposer"):
        assert (resumed / "checkpoint-2" / role / "adapter_model.safetensors").read_bytes() == \
            (last / role / "adapter_model.safetensors").read_bytes()
    assert lines_without_timings(resumed / "log.jsonl") == records

    # evaluate the checkpoint from the command line (default config: the checkpoint says qlora, so a 4-bit base)
    from evolmm_lib.__main__ import main
    from evolmm_lib.evaluation import evaluate
    from evolmm_lib.evaluation.datasets import load_local

    data = write_chartqa_folder(tmp_path / "bench")
    rc = main(["evaluate", "--model", "tiny", "--benchmark", "chartqa", "--data-dir", str(data), "--adapters", str(last),
               "--max-new-tokens", "4", "--output", str(tmp_path / "eval.json"), "--no-progress"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n"] == 2 and summary["role"] == "solver"
    rows = json.loads((tmp_path / "eval.json").read_text())["rows"]
    # the same greedy answers as the trained backbone still in memory: the same 4-bit base and adapters
    ours = evaluate(backbone, "chartqa", load_local("chartqa", data), max_new_tokens=4, progress=False)
    assert [r["response"] for r in rows] == [r["response"] for r in ours.rows]


def test_4bit_layers_keep_the_layout_that_trains_after_an_eval_forward(tmp_path):
    """bitsandbytes repacks a Linear4bit weight for inference at an eval-mode forward on AVX512-BF16 CPUs, and
    a training forward then fails; the kit's 4-bit loader turns that repacking off, so generate → train works on
    any CPU (the flag is checked directly, since a machine without AVX512-BF16 never repacks)."""
    import bitsandbytes as bnb
    import torch

    from evolmm_lib.backbone import load_backbone

    bb = load_backbone("tiny", backend="transformers", config=EvoLMMConfig(update="qlora", backend="transformers"))
    layers = [m for m in bb.model.modules() if isinstance(m, bnb.nn.Linear4bit)]  # the base layers under peft
    assert layers and not any(m.support_avx512bf16_for_cpu for m in layers)
    layer = layers[0]
    x = torch.randn(2, layer.in_features)
    layer.eval()
    with torch.no_grad():
        layer(x)
    layer.train()
    assert not getattr(layer.weight.quant_state, "packing_format_for_cpu", False)
    out = layer(x.requires_grad_())
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
