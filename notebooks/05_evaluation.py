# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Benchmark evaluation as the paper does it
#
# EvoLMM reports accuracy with **lmms-eval**: system prompt *"You are a helpful assistant."*, greedy decoding, each task's prompt, and the authors' wrapper keeps the first `<answer>…</answer>` (else the first `\boxed{…}`) of the response. Here the **base model** (adapters off, π_ref) and the **trained Solver adapter** from notebook 04 answer the same items, and the scores sit beside the paper's table (Qwen2.5-VL-7B: baseline, discrete reward, continuous reward p(a)^γ).
#
# **Which world this notebook runs.** On the CPU (`model = "miniature"`, the default) two worlds, one after the other:
#
# 1. **The miniature world's labelled test split** (`evolmm_lib.miniature.world`, held out from the unlabelled pool
#    notebook 04 trained on): base vs trained Solver, with sampled, majority-of-N and greedy accuracy and agreement.
#    This is where the 2.2M-parameter warm start knows anything, so this is where a change can show.
# 2. **Real benchmarks**: samples of ChartQA and MathVision scored exactly as lmms-eval scores them, beside the
#    paper's table. The miniature model has never seen a chart, so on the CPU this section checks the pipeline; on a
#    GPU with `model = "qwen2.5-vl-7b"` (whose preset evaluates every item with each task's own token budget) and
#    `benchmark_dir = "hub"` it gives the comparable numbers.

# %%
# Colab only: use the kit if this runtime already holds it, else clone it; install it with its extras
# (the `gpu` extra: Unsloth) into this kernel's own Python (%pip) and work in its notebooks/ folder.
# Elsewhere this cell does nothing.
import sys
if "google.colab" in sys.modules:  # Colab's kernel imports google.colab when it starts
    import os
    import site
    kit_dir = "/content/evolmm"  # or a copy of the kit already in the runtime (e.g. on a mounted Drive)
    kit_url = ""  # the kit's git URL, cloned into kit_dir when kit_dir holds no kit
    if not os.path.isdir(os.path.join(kit_dir, "evolmm_lib")):
        if not kit_url:
            raise SystemExit(f"no kit in {kit_dir}: set kit_url (git URL) or kit_dir in this cell")
        # !git clone -q --depth 1 "{kit_url}" "{kit_dir}"
    # %cd {kit_dir}/notebooks
    # %pip install -q -e "..[gpu,eval]"
    for d in site.getsitepackages():
        site.addsitedir(d)  # read the new editable-install .pth now, without restarting the runtime

# %% tags=["parameters"]
# Parameters (papermill overrides these). Defaults: the miniature world's warm start on a CPU, shared real samples.
# None = the model's preset (evolmm_lib.presets; printed below): the miniature and tiny evaluate 6 items per
# benchmark with 16 new tokens and 100 items of the miniature world's test split; every other model all items,
# each task's own token budget, and no miniature-world section.
# On a GPU: model = "qwen2.5-vl-7b", benchmark_dir = "hub", and add "mathverse", "ai2d", "infovqa", "scienceqa".
# world_test_items: items of the miniature world's labelled test split (0 skips that section); N = world_samples.
# benchmark_dir: None = $EVOLMM_BENCHMARKS_DIR's sample of each benchmark when there is one, else the hub set;
# "hub" = the full lmms-eval set; or a folder of data.jsonl + images. limit: items per benchmark.
# checkpoint: None = the newest run_dir/train/checkpoint-* written by notebook 04.
# train_pool: the training image folder, checked for overlap with the evaluated images.
run_dir = "../runs/notebooks"
model = "miniature"  # the model notebook 04 trained: "tiny" (tests), "qwen2.5-vl-7b", a hub id, a local folder
world_test_items = None
world_samples = 5
benchmarks = ["chartqa", "mathvision", "mathvista"]
benchmark_dir = None
limit = None
batch_size = 6
max_new_tokens = None
checkpoint = None
train_pool = None

# %%
import json
from pathlib import Path

# %matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from evolmm_lib.backbone import load_backbone
from evolmm_lib.evaluation import evaluate
from evolmm_lib.evaluation.datasets import DatasetError, load_benchmark
from evolmm_lib.evaluation.report import newest_checkpoint, paper_table, plot_deltas, side_by_side, summary_table
from evolmm_lib.presets import notebook_evaluation

settings = notebook_evaluation(model, limit=limit, max_new_tokens=max_new_tokens, world_test_items=world_test_items)
limit, max_new_tokens, world_test_items = settings["limit"], settings["max_new_tokens"], settings["world_test_items"]

out_dir = Path(run_dir) / "eval"
out_dir.mkdir(parents=True, exist_ok=True)
checkpoint = checkpoint or newest_checkpoint(run_dir)
if checkpoint is None:
    print(f"No checkpoint under {run_dir}/train/: evaluating the base model only.")
else:
    print(f"Trained adapters: {checkpoint}")
backbone = load_backbone(model, adapters_from=checkpoint)
roles = ["base"] + (["solver"] if checkpoint is not None else [])

# %% [markdown]
# ## The miniature world's labelled test split
#
# N samples at T = 1 per item (sampled accuracy: their mean correctness; majority-of-N; agreement) and one greedy
# answer, for the base model (adapters off) and the trained Solver. The dashed line is the share of the test's most
# frequent true answer: a Solver that always says one number scores about that.

# %%
from evolmm_lib.miniature import world as W
from evolmm_lib.miniature.metrics import evaluate as evaluate_on_world, without_items

world_rows = []
if world_test_items:
    world = W.make_world(0, n_warmstart=0, n_pool=0)
    test_items = world.test[:world_test_items]
    for role in roles:
        metrics = evaluate_on_world(backbone, test_items, num_samples=world_samples, max_new_tokens=10, seed=0,
                                    role=None if role == "base" else "solver")
        world_rows.append({"role": role, **without_items(metrics)})
    world_table = pd.DataFrame(world_rows).set_index("role")
    world_table.to_csv(out_dir / "world_test.csv")
    display(world_table.round(3))
    shown = ["sampled_accuracy", "majority_accuracy", "greedy_accuracy", "agreement"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    world_table[shown].T.plot.bar(ax=ax, rot=0)
    ax.axhline(max(world.answer_rates("test").values()), color="k", ls="--", lw=1, label="most frequent true answer")
    ax.set_ylim(0, 1); ax.legend(fontsize=7)
    ax.set_title(f"miniature world, {len(test_items)} held-out test items, N = {world_samples}")
    fig.tight_layout(); fig.savefig(out_dir / "world_test.png", dpi=80)
    plt.show()

# %% [markdown]
# # Real benchmarks
#
# ## The items
#
# Each benchmark's records come from a local folder of `data.jsonl` + images (offline: the shared real samples) or from the hub set lmms-eval uses. MathVista's shared sample holds annotations only (no images), so offline it is skipped here; its scorer is still checked against lmms-eval in the tests.

# %%
records = {}
for name in benchmarks:
    try:
        records[name] = load_benchmark(name, benchmark_dir, limit=limit)
        print(f"{name}: {len(records[name])} items")
    except DatasetError as e:
        print(f"{name}: skipped ({e})")

# %% [markdown]
# ## Generate and score
#
# Greedy, batched; base = adapters disabled, solver = the trained Solver adapter. Rows keep the prompt, the raw response, the wrapper's post-processed answer, the extracted answer and the score.

# %%
summaries, results = [], {}
for name, recs in records.items():
    for role in roles:
        res = evaluate(backbone, name, recs, role=role, batch_size=batch_size, max_new_tokens=max_new_tokens,
                       train_pool=train_pool, output=out_dir / f"{name}-{role}.json", progress=False)
        results[name, role] = res
        summaries.append(res.summary)
summary_table(summaries)

# %% [markdown]
# ## Beside the paper
#
# The paper's numbers are for Qwen2.5-VL-7B on the full sets; a CPU model on a handful of items is a check of the pipeline, not a reproduction. Run this notebook with `model="qwen2.5-vl-7b"` and `benchmark_dir="hub"` on a GPU for comparable numbers.

# %%
paper = paper_table()
if paper is None:
    print("papers/evolmm_results.csv not found: showing the kit's scores only")
table = side_by_side(summaries, paper)
table.to_csv(out_dir / "table.csv")
table

# %%
ax = plot_deltas(table)
ax.figure.tight_layout()
ax.figure.savefig(out_dir / "deltas.png", dpi=120)

# %% [markdown]
# ## A few items

# %%
examples = pd.concat([pd.DataFrame(r.rows).assign(benchmark=n, role=role).head(3)
                      for (n, role), r in results.items()], ignore_index=True) if results else pd.DataFrame()
examples[[c for c in ["benchmark", "role", "id", "post", "extracted", "answer", "score"] if c in examples]]

# %%
json.dump(summaries, open(out_dir / "summaries.json", "w"), indent=1)
total = sum(s["n"] for s in summaries); secs = sum(s["seconds"] for s in summaries)
print(f"{total} items in {secs:.1f} s: {total / max(secs, 1e-9):.2f} items/s on {model}")
