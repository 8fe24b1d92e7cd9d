"""Miniature reproduction: world ground truth and splits, warm start, metrics, study and CLI."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from PIL import Image

from evolmm_lib.images import pixel_sha256
from evolmm_lib.miniature import world as W
from evolmm_lib.miniature.metrics import summarize

TINY_RECIPE = {"perception_steps": 3, "steps": 3, "batch_size": 4, "warmup": 1}
"""A warm start of a few steps: enough to exercise the recipe end to end in seconds."""


# --- world -------------------------------------------------------------------------------

def _pixels_count(item: W.Item) -> int:
    """Recount matching objects from the pixels: each cell's colour, and square vs circle by fill ratio."""
    im = item.image
    n = 0
    for cell in range(W.GRID * W.GRID):
        x, y = (cell % W.GRID) * W.CELL, (cell // W.GRID) * W.CELL
        centre = im.getpixel((x + W.CELL // 2, y + W.CELL // 2))
        colour = next((c for c, rgb in W.COLOURS.items() if rgb == centre), None)
        if colour is None:
            continue
        filled = [(i, j) for i in range(W.CELL) for j in range(W.CELL) if im.getpixel((x + i, y + j)) == centre]
        box = (max(i for i, _ in filled) - min(i for i, _ in filled) + 1) ** 2
        shape = "square" if len(filled) / box > 0.9 else "circle"  # a disc fills ~π/4 of its box
        n += (item.colour in (None, colour)) and (item.shape in (None, shape))
    return n


def test_ground_truth_matches_the_pixels():
    rng = random.Random(5)
    for _ in range(200):
        it = W.sample_item(rng)
        assert it.answer == W.count(it.objects, it.colour, it.shape) == _pixels_count(it)
        assert W.parse_world_question(it.question) == (it.colour, it.shape)


def test_world_is_seeded_and_splits_are_prefix_stable():
    a = W.make_world(3, n_warmstart=20, n_validation=10, n_test=30, n_pool=10)
    b = W.make_world(3, n_warmstart=20, n_validation=10, n_test=30, n_pool=10)
    small = W.make_world(3, n_warmstart=5, n_validation=4, n_test=12, n_pool=3)
    c = W.make_world(4, n_warmstart=20, n_validation=10, n_test=30, n_pool=10)
    h = lambda items: [pixel_sha256(it.image) for it in items]  # noqa: E731
    assert h(a.test) == h(b.test) and a.pool == b.pool
    assert h(small.test) == h(a.test)[:12] and h(small.validation) == h(a.validation)[:4]
    assert h(c.test) != h(a.test)


def test_answers_are_balanced():
    world = W.make_world(0, n_warmstart=0, n_validation=0, n_test=500, n_pool=0)
    rates = world.answer_rates("test")
    assert set(rates) == {str(i) for i in range(7)}
    assert max(rates.values()) <= 0.20
    assert len(Counter(it.question for it in world.test)) == len(W.all_questions()) == 15


def test_targets_of_both_variants():
    it = W.Item([W.Obj(5, "red", "square", 4), W.Obj(1, "red", "circle", 4), W.Obj(2, "blue", "circle", 3)],
                "red", None, 2, W.question_text("red", None))
    assert it.target("direct") == "<answer>2</answer>"
    assert it.target("reasoning") == "red circle, red square <answer>2</answer>"
    assert W.Item([], "red", "circle", 0).target("reasoning") == "none <answer>0</answer>"


def test_pool_never_holds_a_test_image_and_the_check_catches_one(tmp_path):
    world = W.make_world(0, n_warmstart=0, n_validation=20, n_test=100, n_pool=200)
    pool = world.write_pool(tmp_path / "pool")
    check = W.check_pool_disjoint(world, pool)
    assert check["pool_files"] == 200 and check["test_images"] <= 100 and check["overlap"] == []
    world.test[7].image.save(pool / "leaked.png")
    assert W.check_pool_disjoint(world, pool)["overlap"] == [str(pool / "leaked.png")]


def test_own_question_accuracy_scores_the_proposers_questions_with_the_exact_answers():
    from evolmm_lib.miniature.study import own_question_accuracy

    world = W.make_world(0, n_warmstart=0, n_validation=0, n_test=0, n_pool=3)
    q_red, q_all = W.question_text("red", None), W.question_text(None, None)
    t_red = W.count(world.pool[1], "red", None)
    t_all = W.count(world.pool[2], None, None)
    assert W.pool_answer(world, "/x/pool_00001.png", q_red) == t_red
    assert W.pool_answer(world, "/x/pool_00001.png", "What is this?") is None
    assert W.pool_answer(world, "/x/other.png", q_red) is None
    wrong = str(t_all + 1)
    logs = [{"image": "p/pool_00001.png", "question": q_red, "solver_answers_normalized": [str(t_red)] * 4 + ["9"],
             "majority_answer": str(t_red)},
            {"image": "p/pool_00002.png", "question": q_all, "solver_answers_normalized": [wrong] * 5,
             "majority_answer": wrong},
            {"image": "p/pool_00000.png", "question": "Describe the image.", "solver_answers_normalized": ["0"] * 5,
             "majority_answer": "0"}]
    acc = own_question_accuracy(logs, world)
    assert acc["world_question_rate"] == pytest.approx(2 / 3)
    assert acc["sampled_accuracy"] == pytest.approx((0.8 + 0.0) / 2)
    assert acc["majority_accuracy"] == pytest.approx(0.5)
    assert sum(acc["true_answer_rates"].values()) == pytest.approx(1.0)


def test_pool_keeps_the_generators_question_for_each_scene():
    world = W.make_world(0, n_warmstart=0, n_validation=20, n_test=100, n_pool=300)
    assert len(world.pool_questions) == len(world.pool) == 300
    answers = [W.count(scene, *W.parse_world_question(q)) for scene, q in zip(world.pool, world.pool_questions)]
    rates = Counter(answers)
    assert set(rates) == set(range(7)) and max(rates.values()) / 300 <= 0.22  # balanced like the test
    # the same scenes as a generator that throws the question away
    r, held_out = random.Random("0-pool"), {pixel_sha256(it.image) for it in world.test + world.validation}
    scenes = []
    while len(scenes) < 300:
        it = W.sample_item(r)
        if pixel_sha256(it.image) not in held_out:
            scenes.append(it.objects)
    assert scenes == world.pool


def test_pixel_hash_equals_the_image_module_hash(tmp_path):
    from evolmm_lib.images import image_sha256

    it = W.sample_item(random.Random(1))
    it.image.save(tmp_path / "a.png")
    assert pixel_sha256(it.image) == image_sha256(tmp_path / "a.png")


# --- diagnostics and arms ----------------------------------------------------------------

def test_net_push_and_shares_say_which_answer_an_update_raises():
    from evolmm_lib.miniature.diagnostics import net_push, run_diagnostics

    assert net_push(["3", "3", "2"], [0.2, 0.2, -0.5], "3") == pytest.approx(0.4)
    assert net_push(["3", "3", "2"], [0.2, 0.2, -0.5], "2") == pytest.approx(-0.5)
    assert net_push(["3"], [1.0], "7") == 0.0
    world = W.make_world(0, n_warmstart=0, n_validation=0, n_test=0, n_pool=3)
    q = W.question_text(None, None)
    truth = [str(W.count(world.pool[i], None, None)) for i in range(3)]
    wrong = "9"

    def rec(step, i, answers, adv):
        maj = Counter(answers).most_common(1)[0][0]
        return {"step": step, "image": f"p/pool_{i:05d}.png", "question": q, "solver_answers_normalized": answers,
                "solver_advantages": adv, "majority_answer": maj, "majority_fraction": answers.count(maj) / len(answers)}

    # step 1: the image's own (true) majority pushed down by an ema baseline above every reward;
    # steps 2-4: the run's global answer "9" raised on images where it is the majority; step 5: raised
    # on an image whose majority is the truth (drift)
    logs = [rec(1, 0, [truth[0]] * 3 + [wrong] * 2, [-0.1] * 5),
            *[rec(s, 1, [wrong] * 5, [0.3] * 5) for s in (2, 3, 4)],
            rec(5, 2, [truth[2]] * 3 + [wrong] * 2, [0.1] * 3 + [0.2] * 2)]
    diag = run_diagnostics(logs, world)
    assert diag["global_answer"] == wrong
    sh = diag["shares"]["all"]
    assert sh["toward_own_majority"] == pytest.approx(4 / 5)
    assert sh["toward_global_elsewhere"] == pytest.approx(1 / 2) and sh["global_elsewhere_n"] == 2
    assert sh["majority_is_true"] == pytest.approx(2 / 5)
    assert diag["series"][0]["own_sampled_correct"] == pytest.approx(0.6)
    assert diag["answers"]["late"]["sampled"] == {truth[2]: 0.6, wrong: 0.4}


def test_arm_registry_drives_the_cli_and_the_trainer_config():
    import argparse

    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.miniature import cli
    from evolmm_lib.miniature.arms import ARMS, arm_config
    from evolmm_lib.miniature.study import DEFAULT_RL

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    assert cli.settings_from_args(p.parse_args(["--arms", "oracle", "none"])).arms == ["oracle", "none"]
    with pytest.raises(SystemExit):
        p.parse_args(["--arms", "nonsense"])
    for arm in ARMS.values():
        EvoLMMConfig(**arm_config(arm, DEFAULT_RL, steps=200)).validate()
    assert "proposer_update_freq" not in arm_config(ARMS["oracle"], {}, steps=200)  # the question source decides
    assert arm_config(ARMS["discrete"], DEFAULT_RL, steps=200)["reward"] == "discrete"
    official = arm_config(ARMS["official"], DEFAULT_RL, steps=200)
    assert (official["recipe"], official["update"]) == ("official", "lora")
    # ARM.KEY=VALUE reaches that arm only, over the arm's own setting; a plain KEY=VALUE reaches every arm
    # but not a key the arm sets itself
    rl = cli.settings_from_args(p.parse_args(["--set", "official.lr=3e-4", "lr=7e-5"])).rl
    assert arm_config(ARMS["official"], rl, steps=200)["lr"] == 3e-4
    assert arm_config(ARMS["continuous"], rl, steps=200)["lr"] == 7e-5
    assert "official.lr" not in arm_config(ARMS["continuous"], rl, steps=200)
    from evolmm_lib.miniature.plots import COLOURS

    assert len({COLOURS[a] for a in ARMS}) == len(ARMS)  # every arm its own colour in the figures


def test_oracle_trainer_asks_the_worlds_question_and_never_updates_the_proposer(tmp_path):
    import torch

    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.images import ImagePool
    from evolmm_lib.miniature.arms import ARMS, arm_config, make_trainer
    from evolmm_lib.miniature.study import DEFAULT_RL
    from evolmm_lib.miniature.warmstart import WarmStartRecipe, ensure_warmstart

    world = W.make_world(0, n_warmstart=0, n_validation=0, n_test=0, n_pool=4)
    pool = world.write_pool(tmp_path / "pool")
    rl = {**DEFAULT_RL, "max_new_tokens_solver": 6, "proposer_update_freq": 1}  # a Proposer update due every step
    cfg = EvoLMMConfig(model=str(ensure_warmstart(WarmStartRecipe())), data_dir=str(pool), output_dir=str(tmp_path),
                       total_steps=3, **arm_config(ARMS["oracle"], rl, steps=3))
    bb = load_backbone(config=cfg)
    before = [p.detach().clone() for p in bb.trainable_parameters("proposer")]
    trainer = make_trainer(ARMS["oracle"], bb, cfg, ImagePool(str(pool), 0), tmp_path, world)
    recs = [rec for _ in range(3) for rec in trainer.step()]
    for rec in recs:
        assert rec["question"] == world.pool_questions[W.pool_index(rec["image"])]
        assert rec["proposer_updated"] is False and len(rec["solver_advantages"]) == 5
    assert all(torch.equal(a, b) for a, b in zip(before, bb.trainable_parameters("proposer")))


def _part(seeds, arms, value):
    """A results.json of untrained arms with constant metrics (no model needed)."""
    m = {"sampled_accuracy": value, "majority_accuracy": value, "greedy_accuracy": value, "agreement": 0.5,
         "constant_answer_rate": 0.2}
    rows = lambda: {"before": [0.4] * len(seeds), "after": [value] * len(seeds),  # noqa: E731
                    "before_metrics": [m] * len(seeds), "after_metrics": [m] * len(seeds),
                    "curves": [[{"step": 0, **m}, {"step": 2, **m}]] * len(seeds), "dynamics": [{}] * len(seeds),
                    "diagnostics": [{}] * len(seeds), "time": [{}] * len(seeds), "logs": [[]] * len(seeds)}
    return {"settings": {"seeds": seeds, "arms": arms}, "world": {"test_most_frequent_answer_rate": 0.166},
            "time": {"wall_s": 1.0, "cpu_s": 1.0}, "arms": {a: rows() for a in arms}}


def test_merge_joins_disjoint_seeds_and_disjoint_arms(tmp_path):
    from evolmm_lib.miniature.study import markdown_table, merge_results, seed_rows

    seeds = merge_results([_part([0, 1], ["none"], 0.4), _part([2], ["none"], 0.7)], tmp_path / "a")
    assert seeds["arms"]["none"]["seeds"] == [0, 1, 2] and seeds["arms"]["none"]["after"] == [0.4, 0.4, 0.7]
    arms = merge_results([_part([0, 1], ["none"], 0.4), _part([0, 1], ["oracle"], 0.5)], tmp_path / "b")
    assert arms["settings"]["seeds"] == [0, 1] and set(arms["arms"]) == {"none", "oracle"}
    assert arms["targets"]["oracle_minus_none_sampled"] == pytest.approx(0.1)
    assert arms["targets"]["oracle_target_met"] is True
    assert [(r["arm"], r["seed"]) for r in seed_rows(arms)] == [("none", 0), ("none", 1), ("oracle", 0), ("oracle", 1)]
    assert "| oracle | 0.400 → 0.500 |" in markdown_table(arms)
    assert json.loads((tmp_path / "b" / "results.json").read_text())["arms"]["oracle"]["after"] == [0.5, 0.5]


# --- metrics -----------------------------------------------------------------------------

def _record(gold, answers, greedy):
    from evolmm_lib.rewards import majority_vote

    maj, n = majority_vote(answers)
    return {"gold": gold, "answers": answers, "greedy": greedy, "sampled_correct": sum(a == gold for a in answers) / 5,
            "majority_correct": float(maj == gold), "agreement": n / 5, "entropy": 0.0, "formatted": 1.0}


def test_summary_metrics_and_collapse_detector():
    recs = [_record("3", ["3", "3", "1", "3", "2"], "3"), _record("1", ["3", "3", "3", "3", "3"], "3")]
    m = summarize(recs)
    assert m["sampled_accuracy"] == pytest.approx((3 / 5 + 0) / 2)
    assert m["majority_accuracy"] == 0.5 and m["greedy_accuracy"] == 0.5
    assert m["agreement"] == pytest.approx((3 / 5 + 1) / 2)
    assert m["constant_answer_rate"] == pytest.approx(8 / 10) and m["most_frequent_answer"] == "3"


def test_evaluate_runs_the_solver_on_items(tiny_backbone):
    from evolmm_lib.miniature.metrics import evaluate

    items = W.make_world(0, n_warmstart=0, n_validation=0, n_test=6, n_pool=0).test
    m = evaluate(tiny_backbone, items, num_samples=3, max_new_tokens=4, batch_items=4)
    assert m["n"] == 6 and len(m["items"]) == 6 and all(len(r["answers"]) == 3 for r in m["items"])
    for k in ("sampled_accuracy", "majority_accuracy", "greedy_accuracy", "agreement", "constant_answer_rate"):
        assert 0.0 <= m[k] <= 1.0
    again = evaluate(tiny_backbone, items, num_samples=3, max_new_tokens=4, batch_items=4)
    assert [r["answers"] for r in again["items"]] == [r["answers"] for r in m["items"]]  # seeded


# --- warm start --------------------------------------------------------------------------

def test_sft_loss_falls_on_a_fixed_batch():
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from evolmm_lib.miniature.warmstart import WARM_SPEC, WarmStartRecipe, examples, sft_loss
    from evolmm_lib.tiny_model import ensure_tiny_model

    base = ensure_tiny_model(WARM_SPEC)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(base)
    processor = AutoProcessor.from_pretrained(base)
    world = W.make_world(0, n_warmstart=8, n_validation=0, n_test=0, n_pool=0)
    batch = examples(world, WarmStartRecipe(proposer_fraction=0.5))[:6]
    assert any(p.startswith("You are a Question Proposer") and t.startswith("<question>") for _, p, t in batch)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(6):
        loss = sft_loss(model, processor, batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_warmstart_is_deterministic_cached_and_loads_as_a_backbone(tmp_path):
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.miniature.warmstart import WarmStartRecipe, ensure_warmstart, warmstart_info

    recipe = WarmStartRecipe(**TINY_RECIPE)
    p1 = ensure_warmstart(recipe, cache_dir=tmp_path / "a")
    p2 = ensure_warmstart(recipe, cache_dir=tmp_path / "b")
    assert p1.name == p2.name == f"miniature-warm-{recipe.key()}"
    assert (p1 / "model.safetensors").read_bytes() == (p2 / "model.safetensors").read_bytes()
    mtime = (p1 / "model.safetensors").stat().st_mtime
    assert ensure_warmstart(recipe, cache_dir=tmp_path / "a") == p1
    assert (p1 / "model.safetensors").stat().st_mtime == mtime  # cached, not rebuilt
    info = warmstart_info(p1)
    assert info["recipe"]["steps"] == 3 and info["cpu_s"] >= 0
    bb = load_backbone(config=EvoLMMConfig(model=str(p1), max_new_tokens_solver=6))
    from evolmm_lib.rollout import sample_answers

    item = W.sample_item(random.Random(0))
    assert len(sample_answers(bb, item.image, item.question, bb.config).answers) == 5


def test_shipped_warmstart_is_the_default_recipe_and_half_knows_the_world():
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.miniature.metrics import evaluate
    from evolmm_lib.miniature.warmstart import SHIPPED_DIR, WarmStartRecipe, ensure_warmstart, warmstart_info

    path = ensure_warmstart(WarmStartRecipe())
    assert path.parent == SHIPPED_DIR, "the default recipe's warm start should be shipped under data/miniature"
    info = warmstart_info(path)
    assert info["key"] == WarmStartRecipe().key() and info["perception_cell_accuracy"] == 1.0
    bb = load_backbone(config=EvoLMMConfig(model=str(path), update="full"))
    items = W.make_world(0, n_warmstart=0, n_validation=40, n_test=0, n_pool=0).validation
    m = evaluate(bb, items, num_samples=2, max_new_tokens=10)
    chance = max(W.make_world(0, n_warmstart=0, n_validation=40, n_test=0, n_pool=0).answer_rates("validation").values())
    assert m["format_rate"] > 0.95
    assert m["greedy_accuracy"] > chance + 0.15  # it sees the images ...
    assert m["sampled_accuracy"] < 0.9  # ... but only half knows them


def test_spread_warmstart_divides_the_logits_and_keeps_older_keys(tmp_path):
    import torch
    from transformers import AutoModelForImageTextToText

    from evolmm_lib.miniature.warmstart import WarmStartRecipe, ensure_warmstart, warmstart_info

    assert WarmStartRecipe().key() == "8ac994a7d1dd"  # the shipped default: adding a field keeps its key
    recipe = WarmStartRecipe(logit_spread=1.5)
    assert recipe.key() != WarmStartRecipe().key() and recipe.base() == WarmStartRecipe()
    path = ensure_warmstart(recipe, cache_dir=tmp_path)
    info = warmstart_info(path)
    assert info["derived_from"] == "8ac994a7d1dd" and info["recipe"]["logit_spread"] == 1.5
    load = lambda p: AutoModelForImageTextToText.from_pretrained(p, dtype=torch.float32)  # noqa: E731
    base, spread = load(ensure_warmstart(WarmStartRecipe())), load(path)
    norm = lambda m: m.model.language_model.norm.weight  # noqa: E731
    assert torch.allclose(norm(spread) * 1.5, norm(base), rtol=1e-3)
    other = [n for n, p in spread.state_dict().items() if not torch.equal(p, base.state_dict()[n])]
    assert other == ["model.language_model.norm.weight"]


# --- study and CLI (the kit's trainer; notebook 06 is in test_notebook_06.py) ---------------------

SMALL = ["--steps", "2", "--eval-every", "2", "--n-test", "8", "--n-validation", "6"]


@pytest.mark.slow
def test_cli_writes_results_and_plots(tmp_path, monkeypatch):
    from evolmm_lib.__main__ import main
    from evolmm_lib.miniature import study

    monkeypatch.setattr(study.StudySettings, "__init__", _small_init(study.StudySettings.__init__))
    out = tmp_path / "mini"
    assert main(["miniature", "--seeds", "1", "--output-dir", str(out), *SMALL]) == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["arms"]) == set(study.DEFAULT_ARMS) == {"continuous", "oracle", "none"}
    for arm in res["arms"].values():
        assert len(arm["before"]) == len(arm["after"]) == 1
        assert all(0.0 <= x <= 1.0 for x in arm["before"] + arm["after"])
    assert res["pool_check"]["overlap"] == 0
    assert len(res["arms"]["continuous"]["logs"][0]) == 2
    own = res["arms"]["continuous"]["dynamics"][0]["late"]["own_questions"]
    assert 0.0 <= own["world_question_rate"] <= 1.0
    assert res["arms"]["oracle"]["diagnostics"][0]["shares"]["all"]["labelled_n"] == 2  # world questions only
    assert set(res["targets"]) >= {"oracle_minus_none_sampled", "oracle_target_met", "sampled_target_met"}
    for name in ("validation_curves.png", "test_metrics.png", "entropy_early_late.png", "proposer_questions.png",
                 "agreement_vs_accuracy.png", "update_push_shares.png", "answer_distribution.png"):
        assert Image.open(out / name).size[0] > 100


def test_cli_settings_take_trainer_and_warmstart_overrides():
    import argparse

    from evolmm_lib.miniature import cli

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    args = p.parse_args(["--seeds", "2", "--first-seed", "3", "--set", "lr=2e-5", "advantage=group",
                         "--warmstart", "proposer_grounded=true", "proposer_fraction=0.5"])
    s = cli.settings_from_args(args)
    from evolmm_lib.config import EvoLMMConfig

    assert s.seeds == [3, 4] and s.rl["advantage"] == "group"
    assert EvoLMMConfig(**s.rl).lr == 2e-5  # YAML reads "2e-5" as a string; the config takes it as a float
    assert s.rl["kl_max"] == cli.DEFAULT_RL["kl_max"]  # the rest stays the study default
    recipe = s.recipe()
    assert recipe.proposer_grounded is True and recipe.proposer_fraction == 0.5
    assert recipe.key() != cli.StudySettings().recipe().key()
    from evolmm_lib.miniature.warmstart import WarmStartRecipe

    assert cli.settings_from_args(p.parse_args([])).recipe() == WarmStartRecipe(logit_spread=1.5)  # the default
    plain = cli.settings_from_args(p.parse_args(["--warmstart", "logit_spread=1"])).recipe()
    assert plain.key() == WarmStartRecipe().key()  # the shipped SFT warm start


def _small_init(original):
    """StudySettings with the tiny warm-start recipe and a small pool (the CLI has no flag for them)."""
    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.warmstart = dict(TINY_RECIPE)
        self.n_pool = 30
    return init


def test_noisy_targets_move_answers_to_a_neighbour_and_keep_the_mode():
    from evolmm_lib.miniature.warmstart import WarmStartRecipe, noisy_targets

    batch = [(None, "solver prompt", f"<answer>{n}</answer>") for n in range(7)] * 300
    batch.append((None, "proposer prompt", "<question>How many shapes are in the image?</question>"))
    out = noisy_targets(batch, 0.4, random.Random(0))
    moved = Counter()
    for (_, _, before), (_, _, after) in zip(batch, out):
        if before.startswith("<question>"):
            assert after == before  # Proposer targets are never touched
            continue
        n, m = int(before[8]), int(after[8])
        assert abs(n - m) <= 1 and 0 <= m <= 6
        moved[n] += n != m
    assert all(0.3 < moved[n] / 300 < 0.5 for n in range(7))  # about q of each answer moved; the mode stays
    assert noisy_targets(batch, 0.0, random.Random(0)) == batch
    assert WarmStartRecipe(label_noise=0.0).key() == WarmStartRecipe().key() != WarmStartRecipe(label_noise=0.5).key()
