"""Figures of the miniature study, drawn from ``results.json`` alone (matplotlib, Agg-safe)."""

from __future__ import annotations

from pathlib import Path

COLOURS = {"continuous": "tab:blue", "discrete": "tab:orange", "oracle": "tab:green", "official": "tab:purple",
           "none": "tab:gray"}


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def plot_curves(results: dict, path: Path, metric: str = "sampled_accuracy") -> Path:
    """Validation ``metric`` over self-evolution steps, one thin line per seed, thick = mean."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, r in results["arms"].items():
        curves = r["curves"]
        for c in curves:
            ax.plot([p["step"] for p in c], [p.get(metric, float("nan")) for p in c], color=COLOURS.get(arm),
                    alpha=0.3, lw=1)
        steps = [p["step"] for p in curves[0]]
        if all(len(c) == len(steps) for c in curves):
            mean = [sum(c[i].get(metric, float("nan")) for c in curves) / len(curves) for i in range(len(steps))]
            ax.plot(steps, mean, color=COLOURS.get(arm), lw=2.5, label=arm)
    ax.set_xlabel("self-evolution step")
    ax.set_ylabel(f"validation {metric.replace('_', ' ')}")
    ax.legend()
    return _save(fig, path)


def plot_test_bars(results: dict, path: Path) -> Path:
    """Held-out test metrics after self-evolution, mean over seeds, per arm."""
    plt = _plt()
    metrics = ["sampled_accuracy", "majority_accuracy", "greedy_accuracy", "agreement", "constant_answer_rate"]
    arms = list(results["arms"])
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(arms)
    for j, arm in enumerate(arms):
        after = results["arms"][arm]["after_metrics"]
        vals = [sum(m.get(k, 0.0) for m in after) / len(after) for k in metrics]
        ax.bar([i + j * width for i in range(len(metrics))], vals, width, label=arm, color=COLOURS.get(arm))
    ax.axhline(results["world"]["test_most_frequent_answer_rate"], color="k", ls=":", lw=1,
               label="most frequent true answer")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(metrics))])
    ax.set_xticklabels([m.replace("_", "\n") for m in metrics], fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("held-out test, after self-evolution (mean over seeds)")
    return _save(fig, path)


def plot_entropy(results: dict, path: Path) -> Path:
    """Answer-entropy distribution of the Solver on the Proposer's questions, early vs late (curriculum)."""
    plt = _plt()
    trained = [a for a, r in results["arms"].items() if any(d for d in r["dynamics"])]
    fig, axes = plt.subplots(1, max(1, len(trained)), figsize=(5 * max(1, len(trained)), 3.5), squeeze=False)
    for ax, arm in zip(axes[0], trained):
        for phase, colour in (("early", "tab:red"), ("late", "tab:green")):
            ent = [e for d in results["arms"][arm]["dynamics"] if d for e in d[phase]["entropy"]]
            ax.hist(ent, bins=12, range=(0, 1.7), alpha=0.5, color=colour, label=f"{phase} ({len(ent)})")
        ax.set_title(f"{arm}: answer entropy H")
        ax.set_xlabel("H (nats)")
        ax.legend()
    return _save(fig, path)


def plot_questions(results: dict, path: Path) -> Path:
    """The Proposer's question templates, early vs late (all trained arms and seeds pooled)."""
    plt = _plt()
    early, late = {}, {}
    for r in results["arms"].values():
        for d in r["dynamics"]:
            if not d:
                continue
            for k, v in d["early"]["questions"].items():
                early[k] = early.get(k, 0) + v
            for k, v in d["late"]["questions"].items():
                late[k] = late.get(k, 0) + v
    keys = sorted(set(early) | set(late))
    fig, ax = plt.subplots(figsize=(8, 4))
    ne, nl = max(1, sum(early.values())), max(1, sum(late.values()))
    ax.bar([i - 0.2 for i in range(len(keys))], [early.get(k, 0) / ne for k in keys], 0.4, label="early")
    ax.bar([i + 0.2 for i in range(len(keys))], [late.get(k, 0) / nl for k in keys], 0.4, label="late")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(keys, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("share of proposed questions")
    ax.legend()
    return _save(fig, path)


def _diagnosed(results: dict) -> list[str]:
    return [a for a, r in results["arms"].items() if any(d for d in r.get("diagnostics", []))]


def _rolling(xs: list, window: int) -> list[float]:
    out = []
    for i in range(len(xs)):
        part = [x for x in xs[max(0, i - window + 1): i + 1] if x is not None]
        out.append(sum(part) / len(part) if part else float("nan"))
    return out


def plot_agreement_vs_accuracy(results: dict, path: Path, window: int = 25) -> Path:
    """Per trained arm, over steps (rolling mean, seeds averaged): agreement of the N samples and their
    accuracy on the Solver's own training questions (exact labels, for the report only)."""
    plt = _plt()
    arms = _diagnosed(results)
    fig, axes = plt.subplots(1, max(1, len(arms)), figsize=(4.5 * max(1, len(arms)), 3.5), squeeze=False)
    for ax, arm in zip(axes[0], arms):
        runs = [d["series"] for d in results["arms"][arm]["diagnostics"] if d]
        steps = [s["step"] for s in runs[0]]
        for key, style, label in (("agreement", "-", "agreement"), ("own_sampled_correct", "--", "accuracy (labels)")):
            per_run = [_rolling([s[key] for s in run], window) for run in runs]
            mean = [sum(r[i] for r in per_run) / len(per_run) for i in range(min(map(len, per_run)))]
            ax.plot(steps[:len(mean)], mean, style, color=COLOURS.get(arm), label=label)
        ax.set_ylim(0, 1)
        ax.set_title(f"{arm}: own training questions")
        ax.set_xlabel(f"step (rolling mean of {window})")
        ax.legend(fontsize=8)
    return _save(fig, path)


PUSHES = (("toward_own_majority", "image's own majority"), ("toward_global_elsewhere", "global answer, elsewhere"),
          ("toward_truth", "true answer (labels)"))


def plot_push_shares(results: dict, path: Path) -> Path:
    """Share of Solver updates that raise the image's majority answer, the run's globally most frequent
    answer on images where it is not the majority (drift), and the true answer; early vs late, mean of seeds."""
    plt = _plt()
    arms = _diagnosed(results)
    fig, ax = plt.subplots(figsize=(8, 4))
    bars = [(arm, phase) for arm in arms for phase in ("early", "late")]
    width = 0.8 / max(1, len(bars))
    for j, (arm, phase) in enumerate(bars):
        runs = [d["shares"][phase] for d in results["arms"][arm]["diagnostics"] if d]
        vals = []
        for key, _ in PUSHES:
            xs = [r[key] for r in runs if r[key] is not None]
            vals.append(sum(xs) / len(xs) if xs else 0.0)
        ax.bar([i + j * width for i in range(len(PUSHES))], vals, width, color=COLOURS.get(arm),
               alpha=0.45 if phase == "early" else 1.0, label=f"{arm} {phase}")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(PUSHES))])
    ax.set_xticklabels([label for _, label in PUSHES], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of Solver updates that raise it")
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def _numbers_or_other(shares: dict) -> dict:
    """Answer shares with every non-numeric answer (unparsed, malformed) pooled as "other"."""
    out: dict = {}
    for a, v in shares.items():
        key = a if a.isdigit() else "other"
        out[key] = out.get(key, 0.0) + v
    return out


def plot_answer_distribution(results: dict, path: Path) -> Path:
    """Per trained arm: the Solver's sampled answers early vs late, and the true answers of its own
    questions (labels, black ticks), seeds pooled; malformed answers pooled as "other"."""
    plt = _plt()
    arms = _diagnosed(results)
    fig, axes = plt.subplots(1, max(1, len(arms)), figsize=(4.5 * max(1, len(arms)), 3.5), squeeze=False)
    for ax, arm in zip(axes[0], arms):
        runs = [{phase: {kind: _numbers_or_other(part) for kind, part in r[phase].items()} for phase in r}
                for d in results["arms"][arm]["diagnostics"] if d for r in [d["answers"]]]
        keys = sorted({a for r in runs for p in ("early", "late") for part in r[p].values() for a in part},
                      key=lambda a: (not a.isdigit(), int(a) if a.isdigit() else 0))
        mean = lambda phase, kind: [sum(r[phase][kind].get(k, 0.0) for r in runs) / len(runs) for k in keys]  # noqa: E731
        x = range(len(keys))
        ax.bar([i - 0.2 for i in x], mean("early", "sampled"), 0.4, color=COLOURS.get(arm), alpha=0.45, label="early")
        ax.bar([i + 0.2 for i in x], mean("late", "sampled"), 0.4, color=COLOURS.get(arm), label="late")
        ax.scatter(list(x), mean("late", "truth"), marker="_", s=400, color="k", label="true answers (late)")
        ax.set_xticks(list(x))
        ax.set_xticklabels(keys, fontsize=8)
        ax.set_title(f"{arm}: Solver answers on its own questions")
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_all(results: dict, output_dir: str | Path) -> list[Path]:
    out = Path(output_dir)
    paths = [plot_curves(results, out / "validation_curves.png"),
             plot_curves(results, out / "validation_agreement.png", metric="agreement"),
             plot_test_bars(results, out / "test_metrics.png"),
             plot_entropy(results, out / "entropy_early_late.png"),
             plot_questions(results, out / "proposer_questions.png")]
    if _diagnosed(results):
        paths += [plot_agreement_vs_accuracy(results, out / "agreement_vs_accuracy.png"),
                  plot_push_shares(results, out / "update_push_shares.png"),
                  plot_answer_distribution(results, out / "answer_distribution.png")]
    return paths
