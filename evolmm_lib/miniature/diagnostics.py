"""What one self-evolution run did to the Solver, from its step logs (labels for the report only).

The REINFORCE loss is A_i · NLL_i (``evolmm_lib.policy``), so a step raises the probability of
answer a when the advantages of the samples that gave a sum to more than zero ("net push" on a).
Per step this module records the agreement (share of the N samples on their majority), the Solver's
sampled correctness on its own question (exact answer from the world), and the net push on three
answers: the image's own majority, the run's globally most frequent answer, and the true answer.
A mode-seeking update pushes toward the image's majority; a collapsing one toward the global answer.
"""

from __future__ import annotations

from collections import Counter

from .world import World, pool_answer


def phases(items: list) -> dict[str, list]:
    """A run's ``early`` and ``late`` parts: its first and last quarter (at least one item each)."""
    q = max(1, len(items) // 4)
    return {"early": items[:q], "late": items[-q:]}


def own_answer(rec: dict, world: World) -> tuple[str | None, float | None]:
    """The exact answer of a step's question about its pool image and the share of the N samples that
    gave it; (None, None) when the question is not one of the world's."""
    truth = pool_answer(world, rec["image"], rec["question"])
    if truth is None:
        return None, None
    answers = rec["solver_answers_normalized"]
    return str(truth), sum(a == str(truth) for a in answers) / len(answers)


def net_push(answers: list[str], advantages: list[float], answer: str) -> float:
    """Σ A_i over the samples that gave ``answer`` (> 0: the update makes it more likely)."""
    return sum(a_i for ans, a_i in zip(answers, advantages) if ans == answer)


def step_series(logs: list[dict], world: World) -> tuple[list[dict], str]:
    """Per-step diagnostics of a run and its globally most frequent sampled answer."""
    top = Counter(a for rec in logs for a in rec["solver_answers_normalized"]).most_common(1)
    top = top[0][0] if top else ""
    series = []
    for rec in logs:
        answers, adv = rec["solver_answers_normalized"], rec["solver_advantages"]
        truth, own_sampled_correct = own_answer(rec, world)
        series.append({
            "step": rec["step"], "agreement": rec["majority_fraction"], "majority": rec["majority_answer"],
            "truth": truth, "own_sampled_correct": own_sampled_correct,
            "push_majority": net_push(answers, adv, rec["majority_answer"]),
            "push_global": net_push(answers, adv, top),
            "push_truth": None if truth is None else net_push(answers, adv, truth),
        })
    return series, top


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def push_shares(series: list[dict], top: str) -> dict:
    """Shares of steps whose update raised: the image's majority; the global answer where it is not the
    image's majority (drift); the true answer (labels). ``*_n``: the denominators."""
    other = [s for s in series if s["majority"] != top]
    labelled = [s for s in series if s["truth"] is not None]
    return {"toward_own_majority": _share([s["push_majority"] > 0 for s in series]),
            "toward_global_elsewhere": _share([s["push_global"] > 0 for s in other]),
            "toward_truth": _share([s["push_truth"] > 0 for s in labelled]),
            "majority_is_true": _share([s["majority"] == s["truth"] for s in labelled]),
            "steps": len(series), "global_elsewhere_n": len(other), "labelled_n": len(labelled)}


def answer_distribution(logs: list[dict], world: World) -> dict:
    """Shares of the Solver's sampled answers and of the true answers of its own questions."""
    sampled = Counter(a for rec in logs for a in rec["solver_answers_normalized"])
    truth = Counter(t for rec in logs if (t := own_answer(rec, world)[0]) is not None)
    ns, nt = max(1, sum(sampled.values())), max(1, sum(truth.values()))
    return {"sampled": {a: n / ns for a, n in sorted(sampled.items())},
            "truth": {a: n / nt for a, n in sorted(truth.items())}}


def run_diagnostics(logs: list[dict], world: World) -> dict:
    """Everything above for one run; early/late = first/last quarter of the steps."""
    series, top = step_series(logs, world)
    return {"global_answer": top, "series": series,
            "shares": {"all": push_shares(series, top), **{k: push_shares(part, top) for k, part in phases(series).items()}},
            "answers": {k: answer_distribution(part, world) for k, part in phases(logs).items()}}
