"""bf16 training on the CPU: the tiny model and a two-layer real-shape Qwen2.5-VL-3B, two steps each.

The GPU path trains in bfloat16 (``dtype="auto"`` on a bf16 GPU); these runs put the same code through bf16 on
a CPU. What is kept in float32 on purpose: the log-softmax over the vocabulary and the KL
(:func:`evolmm_lib.logprobs._chunk_stats` upcasts the logits), the LoRA adapters (peft's
``autocast_adapter_dtype`` keeps them float32 for AdamW), and rewards, baselines and β (Python floats).
"""

from __future__ import annotations

import math

import pytest
import torch

from conftest import make_images


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tiny", "random:qwen2.5-vl-3b@2"])
def test_two_bf16_steps_give_finite_losses_rewards_and_kl(model, tmp_path):
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.images import ImagePool
    from evolmm_lib.trainer import EvoLMMTrainer

    cfg = EvoLMMConfig(dtype="bfloat16", backend="transformers", num_solver_samples=2, max_new_tokens_solver=4,
                       max_new_tokens_proposer=4, proposer_update_freq=1, lr=1e-3, save_every=0,
                       max_image_pixels=56 * 56, output_dir=str(tmp_path / "run"))
    bb = load_backbone(model, config=cfg)
    base = [p for n, p in bb.model.named_parameters() if "lora_" not in n]
    adapters = {n: p for n, p in bb.model.named_parameters() if "lora_" in n}
    assert {p.dtype for p in base} == {torch.bfloat16}
    assert adapters and {p.dtype for p in adapters.values()} == {torch.float32}  # peft keeps adapters in fp32
    before = {n: p.detach().clone() for n, p in adapters.items()}

    make_images(tmp_path / "img", 2)
    trainer = EvoLMMTrainer(bb, cfg, pool=ImagePool(str(tmp_path / "img")))
    records = [rec for _ in range(2) for rec in trainer.step()]
    for rec in records:
        assert rec["proposer_updated"]
        for key in ("loss_solver", "kl_solver", "loss_proposer", "kl_proposer", "solver_reward_continuous",
                    "proposer_reward", "entropy", "beta_solver", "beta_proposer", "grad_norm_solver"):
            assert _finite(rec[key]), f"{model}: {key} = {rec[key]}"
        assert all(_finite(r) for r in rec["solver_rewards_continuous"])
        assert rec["skipped_updates"] == 0
    assert records[1]["kl_solver"] > 0.0  # the Solver moved away from π_ref after the first update
    moved = [n for n, p in adapters.items() if not torch.equal(before[n], p.detach())]
    assert any(".visual." not in n for n in moved)
    assert all(torch.isfinite(p).all() for p in adapters.values())
