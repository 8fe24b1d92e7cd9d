"""Rewards: hand-computed values, official normalisation and fallbacks, properties on arbitrary text."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolmm_lib.rewards import (answer_entropy, discrete_solver_rewards, gaussian_band_pass, majority_vote,
                                normalize_answer, normalized_answers, pre_answer_word_count, proposer_reward,
                                solver_rewards)


def test_normalize_answer_official_rules():
    assert normalize_answer("  1,234 ") == "1234"
    assert normalize_answer("The\tRed\n  Square.") == "the red square"
    assert normalize_answer('"(42)"') == "42"
    assert normalize_answer("...") == ""
    assert normalize_answer("3.5%") == "3.5"


def test_solver_rewards_continuous_hand_computed():
    comps = ["<answer>4</answer>"] * 3 + ["<answer>5</answer>", "blah\n<answer>5.</answer>"]
    r = solver_rewards(comps)
    assert r[:3] == pytest.approx([0.6 ** 0.7] * 3)
    assert r[3:] == pytest.approx([0.4 ** 0.7] * 2)


def test_solver_rewards_length_penalty():
    nine = " ".join(["w"] * 9) + " <answer>7</answer>"     # (9-6)/6 = 0.5 -> factor 0.95
    twenty = " ".join(["w"] * 20) + " <answer>7</answer>"  # clipped at 1 -> factor 0.90
    r = solver_rewards([nine, twenty, "<answer>7</answer>"], gamma=0.7, len_penalty_weight=0.1, len_target_words=6)
    assert r == pytest.approx([0.95, 0.90, 1.0])
    # no tag: the whole text counts as words, and its last line is the answer
    assert pre_answer_word_count("a b c\nd") == 4
    assert solver_rewards(["x " * 12 + "\n7", "7"]) == pytest.approx([0.9, 1.0])
    # τ and λ_len are used as given: τ = 3, 5 words -> (5-3)/3, λ_len = 0.3; the tag is found in any case
    five = "a b c d e <ANSWER>7</ANSWER>"
    assert pre_answer_word_count(five) == 5
    assert solver_rewards([five], len_penalty_weight=0.3, len_target_words=3) == pytest.approx([1 - 0.3 * 2 / 3])
    # τ is clamped to ≥ 1 (official): τ = 0 behaves as τ = 1
    assert solver_rewards(["a b <answer>1</answer>"], len_target_words=0) == pytest.approx([0.9])


def test_gamma_changes_partial_agreement_only():
    comps = ["<answer>a</answer>"] * 2 + ["<answer>b</answer>"] * 3
    assert solver_rewards(comps, gamma=1.0) == pytest.approx([0.4, 0.4, 0.6, 0.6, 0.6])
    assert solver_rewards(["<answer>a</answer>"] * 5, gamma=0.3) == pytest.approx([1.0] * 5)


def test_discrete_rewards_majority_and_ties_first_seen():
    comps = ["<answer>b</answer>", "<answer>a</answer>", "<answer>a</answer>", "<answer>B</answer>", "<answer>c</answer>"]
    # b and a both appear twice (after normalisation): the first seen (b) wins, as in the official code
    assert discrete_solver_rewards(comps) == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert majority_vote(["x", "y", "y"]) == ("y", 2)


def test_entropy_and_band_pass():
    assert answer_entropy(["<answer>1</answer>"] * 5) == 0.0
    five = [f"<answer>{i}</answer>" for i in range(5)]
    assert answer_entropy(five) == pytest.approx(math.log(5))
    two_three = ["<answer>a</answer>"] * 2 + ["<answer>b</answer>"] * 3
    h = -(0.4 * math.log(0.4) + 0.6 * math.log(0.6))
    assert answer_entropy(two_three) == pytest.approx(h)
    assert proposer_reward(two_three) == pytest.approx(math.exp(-((h - 0.9) ** 2) / (2 * 0.35 ** 2)))
    # band-pass: trivial (H=0) and hopeless (H=log 5) questions score lower than a mid-entropy one
    assert proposer_reward(["<answer>1</answer>"] * 5) < proposer_reward(two_three)
    assert proposer_reward(five) < proposer_reward(two_three)
    assert proposer_reward(two_three, sigma=0.0) == 0.0
    # μ_H and σ_H in their places: H = 0.5 with μ_H = 0.3, σ_H = 1.2 (swapped they would give 0.9460)
    assert gaussian_band_pass(0.5, mu=0.3, sigma=1.2) == pytest.approx(math.exp(-0.04 / 2.88))
    assert gaussian_band_pass(0.5, mu=0.3, sigma=1.2) != pytest.approx(gaussian_band_pass(0.5, mu=1.2, sigma=0.3))


def test_unknown_answer_fallback_counts_as_an_answer():
    assert discrete_solver_rewards(["", "   ", "<answer>x</answer>"]) == [1.0, 1.0, 0.0]


@pytest.mark.parametrize("bad", [[], "just a string"])
def test_bad_input_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="non-empty list"):
        solver_rewards(bad)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=8))
def test_properties_on_arbitrary_text(comps):
    r = solver_rewards(comps)
    d = discrete_solver_rewards(comps)
    h = answer_entropy(comps)
    assert len(r) == len(d) == len(comps)
    assert all(0.0 <= x <= 1.0 for x in r)
    assert set(d) <= {0.0, 1.0} and sum(d) >= 1
    assert -1e-12 <= h <= math.log(len(comps)) + 1e-9
    assert 0.0 < proposer_reward(comps) <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 14)), min_size=1, max_size=8),
       st.floats(0.1, 2.0))
def test_more_agreement_never_earns_less(samples, gamma):
    """Among completions of the same length, an answer given more often earns strictly more (γ > 0); the
    same count earns the same reward; a longer completion with the same answer never earns more."""
    comps = [" ".join(["w"] * words) + f" <answer>{answer}</answer>" for answer, words in samples]
    r = solver_rewards(comps, gamma=gamma)
    answers = normalized_answers(comps)
    for i, (ai, wi) in enumerate(samples):
        for j, (aj, wj) in enumerate(samples):
            ci, cj = answers.count(answers[i]), answers.count(answers[j])
            if wi == wj and ci > cj:
                assert r[i] > r[j]
            if wi == wj and ci == cj:
                assert r[i] == pytest.approx(r[j], rel=1e-12)
            if ai == aj and wi > wj:
                assert r[i] <= r[j]


GROUPS = [
    ["<answer>3</answer>", "I count three. <answer>3</answer>", "<answer>4</answer>", "4", "<answer> 3. </answer>"],
    ["a b c d e f g h i j k l m n <answer>Red</answer>", "<answer>red</answer>"],
    ["no tag at all"],
]


@pytest.mark.parametrize("group", GROUPS)
def test_public_functions_are_thin_entries_onto_score_group(group):
    from evolmm_lib.rewards import normalized_answers, pre_answer_word_count, score_completions, score_group

    kw = dict(gamma=0.5, len_penalty_weight=0.2, len_target_words=3)
    sc = score_group(normalized_answers(group), [pre_answer_word_count(c) for c in group], **kw, mu=0.7, sigma=0.2)
    assert score_completions(group, **kw, mu=0.7, sigma=0.2) == sc
    assert solver_rewards(group, **kw) == list(sc.continuous)
    assert discrete_solver_rewards(group) == list(sc.discrete) == sc.solver_rewards("discrete")
    assert answer_entropy(group) == sc.entropy
    assert proposer_reward(group, mu=0.7, sigma=0.2) == sc.proposer_reward == gaussian_band_pass(sc.entropy, 0.7, 0.2)
    assert (sc.majority, sc.majority_count) == majority_vote(list(sc.answers))
    assert sc.agreement == sc.majority_count / len(group)


def test_a_trainer_step_parses_each_answer_once(tmp_path, tiny_backbone, monkeypatch):
    from conftest import make_images

    import evolmm_lib.rewards as rewards
    import evolmm_lib.rollout as rollout
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.trainer import EvoLMMTrainer

    calls = []

    def counting(parse):
        def wrapped(text):
            calls.append(text)
            return parse(text)
        return wrapped

    monkeypatch.setattr(rollout, "parse_answer", counting(rollout.parse_answer))
    monkeypatch.setattr(rewards, "parse_answer", counting(rewards.parse_answer))
    make_images(tmp_path / "images", 2)
    cfg = EvoLMMConfig(data_dir=str(tmp_path / "images"), output_dir=str(tmp_path / "run"), num_solver_samples=3,
                       images_per_step=2, max_new_tokens_solver=6, max_new_tokens_proposer=6, save_every=0)
    records = EvoLMMTrainer(tiny_backbone, cfg).step()
    assert len(calls) == 2 * 3  # B × N Solver completions, each parsed once, when sampled
    assert calls == [c for rec in records for c in rec["solver_completions"]]
