"""Several images per step (``images_per_step`` B): one Solver generate of B×N rows, one update,
b and β chained per sample over the B×N rewards in image order, one log line per image, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import make_images
from evolmm_lib import policy, rollout
from evolmm_lib.config import ConfigError, EvoLMMConfig
from evolmm_lib.backbone import load_backbone
from evolmm_lib.policy import group_advantages
from evolmm_lib.trainer import EvoLMMTrainer

N = 3


def cfg_for(tmp_path: Path, **kw) -> EvoLMMConfig:
    if not (tmp_path / "images").is_dir():
        make_images(tmp_path / "images", 6)
    base = dict(data_dir=str(tmp_path / "images"), output_dir=str(tmp_path / "run"), num_solver_samples=N,
                max_new_tokens_solver=8, max_new_tokens_proposer=8, proposer_update_freq=2, save_every=0,
                total_steps=2, images_per_step=2, baseline_momentum=0.8, kl_coef=0.02, kl_adapt_rate=0.2,
                kl_target=0.05)
    return EvoLMMConfig(**{**base, **kw})


def read_log(cfg: EvoLMMConfig) -> list[dict]:
    return [json.loads(x) for x in (Path(cfg.output_dir) / "log.jsonl").read_text().splitlines()]


def test_config_field_and_its_errors():
    assert EvoLMMConfig().images_per_step == 1  # the paper: one image per step
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="images_per_step"):
            EvoLMMConfig(images_per_step=bad)
    with pytest.raises(ConfigError, match="images_per_step=2: recipe='official'"):
        EvoLMMConfig(images_per_step=2, recipe="official")
    with pytest.raises(ConfigError, match="images_per_step=2: .*update_mode='batched'"):
        EvoLMMConfig(images_per_step=2, update_mode="sequential")


def test_two_images_one_solver_generate_one_update_one_line_per_image(tmp_path, tiny_backbone, monkeypatch):
    cfg = cfg_for(tmp_path)
    calls, optimizer_steps, proposer_updates, chains = [], [], [], []
    real_generate, real_chain = rollout.generate, policy.sequential_chain

    def spy_generate(backbone, role, images, prompts, **kw):
        calls.append((role, len(images) * kw.get("num_samples", 1), len(set(map(id, images)))))
        return real_generate(backbone, role, images, prompts, **kw)

    def spy_chain(rewards, kls, baseline, beta, config):
        chains.append((list(rewards), list(kls), baseline, beta))
        return real_chain(rewards, kls, baseline, beta, config)

    monkeypatch.setattr(rollout, "generate", spy_generate)
    monkeypatch.setattr(policy, "sequential_chain", spy_chain)
    tr = EvoLMMTrainer(tiny_backbone, cfg)
    real_step = tr.solver.optimizer.step
    monkeypatch.setattr(tr.solver.optimizer, "step", lambda *a, **k: optimizer_steps.append(1) or real_step(*a, **k))
    real_update = tr.proposer.update
    monkeypatch.setattr(tr.proposer, "update",
                        lambda gen, rewards, rows, **k: proposer_updates.append((list(rewards), list(rows)))
                        or real_update(gen, rewards, rows, **k))
    recs = tr.train()

    # k=2, B=2: ONE Proposer generate asks the 4 questions of steps 1–2; each step ONE Solver generate of B×N rows
    assert calls == [("proposer", 4, 4), ("solver", 2 * N, 2), ("solver", 2 * N, 2)]
    assert len(optimizer_steps) == 2  # one AdamW step per step over all B×N answers
    # one log line per (step, image), identical to the returned records
    assert recs == read_log(cfg)
    assert [(r["step"], r["image_index"]) for r in recs] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert len({r["image"] for r in recs}) == 4
    for r in recs:
        assert len(r["solver_completions"]) == len(r["solver_advantages"]) == N
    # step 2 updates the Proposer on its B rewards, the B rows of that step in the shared generate
    assert proposer_updates == [([recs[2]["proposer_reward"], recs[3]["proposer_reward"]], [2, 3])]
    assert [r["proposer_updated"] for r in recs] == [False, False, True, True]

    # b and β: the sequential per-sample chain over the B×N rewards, image 1's N then image 2's N
    solver_chains = [c for c in chains if len(c[0]) == 2 * N]
    assert len(solver_chains) == 2
    m, b, beta = cfg.baseline_momentum, 0.0, cfg.kl_coef
    for step, (rewards, kls, b_in, beta_in) in zip((1, 2), solver_chains):
        lines = [r for r in recs if r["step"] == step]
        assert rewards == lines[0]["solver_rewards_continuous"] + lines[1]["solver_rewards_continuous"]
        assert (b_in, beta_in) == pytest.approx((b, beta), rel=1e-12)
        advantages = []
        for r, kl in zip(rewards, kls):
            advantages.append(r - b)
            b = m * b + (1 - m) * r
            beta = min(cfg.kl_max, max(cfg.kl_min, beta * math.exp(cfg.kl_adapt_rate * (kl - cfg.kl_target) / cfg.kl_target)))
        assert lines[0]["solver_advantages"] + lines[1]["solver_advantages"] == pytest.approx(advantages, rel=1e-9, abs=1e-12)
        for line in lines:
            assert line["baseline_solver"] == pytest.approx(b, rel=1e-12)
            assert line["beta_solver"] == pytest.approx(beta, rel=1e-12)
    assert beta != cfg.kl_coef


def test_group_advantages_are_per_image(tmp_path, tiny_backbone):
    cfg = cfg_for(tmp_path, advantage="group", total_steps=1, temperature=3.0, max_new_tokens_solver=12)
    recs = EvoLMMTrainer(tiny_backbone, cfg).train()
    for r in recs:
        assert r["solver_advantages"] == pytest.approx(group_advantages(r["solver_rewards_continuous"]), abs=1e-12)


def test_resume_with_several_images_per_step(tmp_path):
    import torch

    # k=3: checkpoint-2 is written while the B questions of step 3 are still queued
    straight = cfg_for(tmp_path, output_dir=str(tmp_path / "straight"), proposer_update_freq=3, total_steps=4)
    split = straight.replace(output_dir=str(tmp_path / "split"), total_steps=2)

    def trainer(cfg):
        torch.manual_seed(0)
        return EvoLMMTrainer(load_backbone("tiny", config=cfg), cfg)

    trainer(straight).train()
    trainer(split).train()
    resumed = trainer(split.replace(total_steps=4))
    assert resumed.resume() and resumed.global_step == 2
    resumed.train()
    strip = lambda r: {k: v for k, v in r.items() if not k.startswith("seconds")}
    assert len(read_log(straight)) == 8
    assert [strip(r) for r in read_log(straight)] == [strip(r) for r in read_log(split)]
