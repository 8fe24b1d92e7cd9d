"""TRL interop: EvoLMM rewards as GRPO reward functions; 2 GRPOTrainer steps on the tiny backbone."""

from __future__ import annotations

import pytest

from evolmm_lib.rewards import proposer_reward, solver_rewards
from evolmm_lib.trl_rewards import make_proposer_reward, make_solver_reward


def test_reward_functions_group_by_num_generations():
    group_a = ["<answer>red</answer>", "<answer>red</answer>", "<answer>blue</answer>"]
    group_b = [[{"role": "assistant", "content": "<answer>3</answer>"}]] * 3
    f = make_solver_reward(3)
    out = f(completions=group_a + group_b, prompts=["p"] * 6)
    assert out[:3] == pytest.approx(solver_rewards(group_a)) and out[3:] == pytest.approx([1.0] * 3)
    assert make_solver_reward(3, discrete=True)(group_a + group_b) == [1.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    p = make_proposer_reward(3)(group_a + group_b)
    assert p[:3] == [proposer_reward(group_a)] * 3 and p[3] == pytest.approx(proposer_reward(["3"] * 3))
    with pytest.raises(ValueError, match="multiple"):
        f(completions=group_a[:2])


@pytest.mark.slow
def test_two_grpo_steps_on_tiny(tmp_path):
    from datasets import Dataset
    from PIL import Image
    from trl import GRPOConfig, GRPOTrainer

    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.prompts import build_solver_prompt

    backbone = load_backbone("tiny")  # own copy: TRL aligns the generation config in place
    n = 2
    prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": build_solver_prompt("What colour?")}]}]
    ds = Dataset.from_dict({"prompt": [prompt] * 2, "image": [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]})
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=n,
                      max_completion_length=8, max_steps=2, logging_steps=1, report_to="none", use_cpu=True,
                      save_strategy="no", learning_rate=1e-3, bf16=False)
    trainer = GRPOTrainer(model=backbone.model, reward_funcs=[make_solver_reward(n), make_proposer_reward(n)],
                          args=args, train_dataset=ds, processing_class=backbone.processor)
    trainer.train()
    assert trainer.state.global_step == 2
    logged = [h for h in trainer.state.log_history if "rewards/evolmm_solver_continuous/mean" in h]
    assert len(logged) == 2
    for h in logged:
        assert 0.0 < h["rewards/evolmm_solver_continuous/mean"] <= 1.0
        assert 0.0 <= h["rewards/evolmm_proposer_reward/mean"] <= 1.0
