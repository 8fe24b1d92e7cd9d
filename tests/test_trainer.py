"""The training loop: log records, proposer cadence, reward switch, bad images, CLI with resume."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, make_images
from evolmm_lib.config import EvoLMMConfig
from evolmm_lib.images import ImageError, ImagePool
from evolmm_lib.trainer import EvoLMMTrainer

FIELDS = ("step", "image", "question", "proposer_raw", "solver_completions", "solver_answers",
          "solver_answers_normalized", "majority_answer", "majority_fraction", "entropy",
          "solver_rewards_continuous", "solver_rewards_discrete", "proposer_reward", "baseline_solver",
          "baseline_proposer", "beta_solver", "beta_proposer", "loss_solver", "loss_proposer", "kl_solver",
          "kl_proposer", "seconds_propose", "seconds_solve", "seconds_update_solver", "seconds_update_proposer",
          "skipped_updates")


def cfg_for(tmp_path: Path, **kw) -> EvoLMMConfig:
    if not (tmp_path / "images").is_dir():
        make_images(tmp_path / "images", 3)
    base = dict(data_dir=str(tmp_path / "images"), output_dir=str(tmp_path / "run"), num_solver_samples=3,
                max_new_tokens_solver=8, max_new_tokens_proposer=8, proposer_update_freq=2, save_every=0,
                total_steps=3)
    return EvoLMMConfig(**{**base, **kw})


def test_step_records_and_log(tmp_path, tiny_backbone, monkeypatch):
    import evolmm_lib.questions as questions_mod

    calls = []
    real = questions_mod.propose_questions
    monkeypatch.setattr(questions_mod, "propose_questions", lambda bb, ims, c: calls.append(len(ims)) or real(bb, ims, c))
    cfg = cfg_for(tmp_path)
    tr = EvoLMMTrainer(tiny_backbone, cfg)
    recs = tr.train()
    # k=2: the Proposer only changes every 2 steps, so steps (1,2) and (3,4) each share one generate
    assert calls == [2, 2]
    assert [r["step"] for r in recs] == [1, 2, 3]
    lines = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert lines == json.loads(json.dumps(recs))
    for r in recs:
        assert set(FIELDS) <= set(r)
        assert len(r["solver_completions"]) == len(r["solver_rewards_continuous"]) == 3
        assert r["solver_answers_normalized"].count(r["majority_answer"]) / 3 == pytest.approx(r["majority_fraction"])
        assert Path(r["image"]).parent == tmp_path / "images"
    assert [r["proposer_updated"] for r in recs] == [False, True, False]
    assert recs[1]["loss_proposer"] is not None and recs[0]["loss_proposer"] is None
    assert recs[0]["beta_proposer"] == cfg.kl_coef != recs[1]["beta_proposer"]
    assert len({r["image"] for r in recs}) == 3  # three different images from the pool
    assert (tmp_path / "run" / "checkpoint-3" / "solver" / "adapter_config.json").is_file()


# --- the log, replayed by hand ------------------------------------------------------------------
# Non-default, asymmetric settings: a log written with the defaults, or with μ_H and σ_H swapped,
# gives other numbers.
REPLAY = dict(prop_entropy_mu=0.3, prop_entropy_sigma=1.2, solver_soft_gamma=0.5, len_penalty_weight=0.3,
              len_penalty_target_words=2, baseline_momentum=0.8, kl_coef=0.02, kl_adapt_rate=0.2, kl_target=0.05,
              num_solver_samples=4, proposer_update_freq=2, total_steps=4)


def hand_rewards(completions, normalized, cfg):
    """Entropy, continuous and discrete Solver rewards and the Proposer reward, from the logged answers."""
    n = len(normalized)
    counts = {}
    for a in normalized:
        counts[a] = counts.get(a, 0) + 1
    entropy = -sum(c / n * math.log(c / n) for c in counts.values())
    tau = cfg.len_penalty_target_words
    cont = []
    for a, text in zip(normalized, completions):
        cut = text.lower().find("<answer>")
        words = len((text if cut < 0 else text[:cut]).split())
        pen = min(1.0, max(0.0, (words - tau) / tau))
        cont.append((counts[a] / n) ** cfg.solver_soft_gamma * (1 - cfg.len_penalty_weight * pen))
    top = max(counts.values())
    majority = next(a for a in normalized if counts[a] == top)  # ties: the first seen
    disc = [float(a == majority) for a in normalized]
    mu, sigma = cfg.prop_entropy_mu, cfg.prop_entropy_sigma
    prop = math.exp(-((entropy - mu) ** 2) / (2 * sigma ** 2))
    return entropy, cont, disc, prop, majority


def replay_beta(beta, kl_values, cfg):
    for kl in kl_values:
        beta = min(cfg.kl_max, max(cfg.kl_min, beta * math.exp(cfg.kl_adapt_rate * (kl - cfg.kl_target) / cfg.kl_target)))
    return beta


def test_logged_rewards_baselines_and_beta_replay_by_hand(tmp_path, tiny_backbone):
    cfg = cfg_for(tmp_path, **REPLAY)
    recs = EvoLMMTrainer(tiny_backbone, cfg).train()
    assert recs == [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    m, k = cfg.baseline_momentum, cfg.proposer_update_freq
    b_sol, b_prop, beta_sol, beta_prop = 0.0, 0.0, cfg.kl_coef, cfg.kl_coef
    entropies = set()
    for rec in recs:
        assert rec["skipped_updates"] == 0
        answers = rec["solver_answers_normalized"]
        assert len(answers) == cfg.num_solver_samples
        entropy, cont, disc, prop, majority = hand_rewards(rec["solver_completions"], answers, cfg)
        entropies.add(round(entropy, 9))
        assert rec["entropy"] == pytest.approx(entropy, abs=1e-12)
        assert rec["solver_rewards_continuous"] == pytest.approx(cont, rel=1e-12)
        assert rec["solver_rewards_discrete"] == disc
        assert rec["solver_reward_continuous"] == pytest.approx(sum(cont) / len(cont), rel=1e-12)
        assert rec["solver_reward_discrete"] == pytest.approx(sum(disc) / len(disc), rel=1e-12)
        assert rec["proposer_reward"] == pytest.approx(prop, rel=1e-12)
        assert rec["majority_answer"] == majority
        # the Solver (continuous reward, ema advantage): sample i uses b_{i−1}, then b moves
        advantages = []
        for r in cont:
            advantages.append(r - b_sol)
            b_sol = m * b_sol + (1 - m) * r
        assert rec["solver_advantages"] == pytest.approx(advantages, rel=1e-9, abs=1e-12)
        assert rec["baseline_solver"] == pytest.approx(b_sol, rel=1e-9)
        # β moves once per sample with that sample's KL; the log holds their mean, which gives the same
        # β_N as long as no clip binds in between (it does not here: β stays far inside [kl_min, kl_max])
        beta_sol = replay_beta(beta_sol, [rec["kl_solver"]] * cfg.num_solver_samples, cfg)
        assert cfg.kl_min * 10 < beta_sol < cfg.kl_max / 10
        assert rec["beta_solver"] == pytest.approx(beta_sol, rel=1e-9)
        assert rec["loss_solver"] == pytest.approx(rec["pg_loss_solver"] + rec["kl_loss_solver"], rel=1e-6, abs=1e-9)
        # the Proposer: updated on steps k, 2k, … with its one reward and its one KL
        assert rec["proposer_updated"] == (rec["step"] % k == 0)
        if rec["proposer_updated"]:
            beta_prop = replay_beta(beta_prop, [rec["kl_proposer"]], cfg)
            b_prop = m * b_prop + (1 - m) * prop
        assert rec["baseline_proposer"] == pytest.approx(b_prop, rel=1e-9)
        assert rec["beta_proposer"] == pytest.approx(beta_prop, rel=1e-9)
    assert b_prop > 0 and beta_prop != cfg.kl_coef  # the Proposer did update
    # the Proposer reward is checked on entropies where swapping μ_H and σ_H would change it
    mu, sigma = cfg.prop_entropy_mu, cfg.prop_entropy_sigma
    assert any(abs(math.exp(-((h - mu) ** 2) / (2 * sigma ** 2)) - math.exp(-((h - sigma) ** 2) / (2 * mu ** 2))) > 0.01
               for h in entropies)


def test_discrete_reward_and_sequential_mode(tmp_path, tiny_backbone):
    cfg = cfg_for(tmp_path, reward="discrete", update_mode="sequential", num_solver_samples=2, total_steps=1)
    (rec,) = EvoLMMTrainer(tiny_backbone, cfg).step()
    r = rec["solver_rewards_discrete"]
    # the solver trained on the discrete rewards: its baseline is the official EMA of them
    assert rec["baseline_solver"] == pytest.approx(0.9 * 0.1 * r[0] + 0.1 * r[1])
    assert len(rec["solver_completions"]) == 2


def test_bad_images_are_skipped_and_counted(tmp_path, tiny_backbone):
    d = tmp_path / "images"
    make_images(d, 2)
    (d / "empty.png").write_bytes(b"")
    (d / "junk.jpg").write_text("not an image")
    from PIL import Image

    Image.new("RGB", (250, 1), "red").save(d / "thin.png")  # Qwen's processor refuses aspect ratios over 200
    cfg = cfg_for(tmp_path, total_steps=4)
    tr = EvoLMMTrainer(tiny_backbone, cfg, pool=ImagePool(str(d), 0))
    recs = [rec for _ in range(3) for rec in tr.step()]
    assert recs[-1]["pool_skipped"] == 3
    assert recs[-1]["pool_skipped_by_reason"] == {"empty": 1, "extreme_aspect": 1, "unreadable": 1}
    (d / "img_00.png").unlink()  # a file removed after the scan is skipped as missing
    recs += [rec for _ in range(3) for rec in tr.step()]
    assert recs[-1]["pool_skipped_by_reason"] == {"empty": 1, "extreme_aspect": 1, "missing": 1, "unreadable": 1}
    assert all(r["image"].endswith(".png") and "empty" not in r["image"] and "thin" not in r["image"] for r in recs)


def test_empty_or_all_bad_folder_is_one_clear_error(tmp_path, tiny_backbone):
    (tmp_path / "none").mkdir()
    with pytest.raises(ImageError, match="no images"):
        EvoLMMTrainer(tiny_backbone, cfg_for(tmp_path, data_dir=str(tmp_path / "none")))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"")
    tr = EvoLMMTrainer(tiny_backbone, cfg_for(tmp_path, data_dir=str(bad)))
    with pytest.raises(ImageError, match="unreadable"):
        tr.step()


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "evolmm_lib", "train", *args], env=env, capture_output=True,
                          text=True, timeout=600, cwd=str(REPO))


@pytest.mark.slow
def test_cli_train_then_resume(tmp_path):
    make_images(tmp_path / "images", 3)
    conf = tmp_path / "c.yaml"
    EvoLMMConfig(num_solver_samples=2, max_new_tokens_solver=6, max_new_tokens_proposer=6, save_every=2,
                 data_dir=str(tmp_path / "images")).save_yaml(conf)
    out = tmp_path / "DIR"
    r = _cli("--model", "tiny", "--steps", "2", "--output-dir", str(out), "--config", str(conf),
             "--set", "proposer_update_freq=1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "checkpoint-2" / "solver" / "adapter_config.json").is_file()
    assert (out / "checkpoint-2" / "proposer" / "adapter_config.json").is_file()
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    r = _cli("--model", "tiny", "--steps", "3", "--output-dir", str(out), "--config", str(conf))
    assert r.returncode == 2 and "--resume" in r.stderr
    r = _cli("--model", "tiny", "--steps", "3", "--output-dir", str(out), "--config", str(conf), "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    steps = [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    assert (out / "checkpoint-3").is_dir()
    r = _cli("--model", "tiny", "--steps", "1", "--output-dir", str(tmp_path / "x"), "--set", "reward=bogus")
    assert r.returncode == 2 and "reward" in r.stderr


def test_only_the_main_rank_rewrites_the_log_on_resume(tmp_path, tiny_backbone):
    """Under several processes every rank resumes, but only rank 0 writes log.jsonl: a second rank trimming it
    too could read it while rank 0 rewrites it and write it back empty (seen once under two gloo processes:
    steps 1-2 lost after a SIGKILL and resume). Rank 0 trims the lines past the checkpoint, through a rename."""
    cfg = cfg_for(tmp_path, save_every=2, total_steps=2)
    EvoLMMTrainer(tiny_backbone, cfg).train()
    log_path = Path(cfg.output_dir) / "log.jsonl"
    lines = log_path.read_text().splitlines()
    past = json.dumps({**json.loads(lines[-1]), "step": 3})  # a step logged after the last checkpoint
    log_path.write_text("\n".join(lines + [past]) + "\n")
    other = EvoLMMTrainer(tiny_backbone, cfg)
    other.dist.rank = 1
    assert other.resume() and other.global_step == 2
    assert log_path.read_text().splitlines() == lines + [past]  # untouched by a non-main rank
    main = EvoLMMTrainer(tiny_backbone, cfg)
    assert main.resume()
    assert log_path.read_text().splitlines() == lines
    assert not list(log_path.parent.glob("*.tmp"))
