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
# # 04 · EvoLMM self-evolution training
#
# One backbone, two LoRA adapters. Each step the **Proposer** asks a question about an unlabelled image, the
# **Solver** answers it N times, the Solver is rewarded by agreement (continuous p(a)^γ with a length penalty) and
# the Proposer by an entropy band-pass around μ_H. Both learn by KL-regularised REINFORCE with EMA baselines and an
# adaptive β (paper §3, `evolmm_lib.trainer`).
#
# **Which world this notebook runs.** On the CPU: the **miniature world** (`evolmm_lib.miniature.world`, counting
# coloured squares and circles) and its warm-started 2.2M-parameter Qwen2.5-VL (`model = "miniature"`), for a couple
# of CPU-minutes on 64 unlabelled world images. The Proposer asks the world's questions and the Solver agrees on
# some and splits on others, so the rewards, β and KL move. It is a demonstration of the real loop, not a
# reproduction: notebook 06 measures what self-evolution does to accuracy in this world. On a GPU the same cells
# run Qwen2.5-VL-7B through Unsloth on real images (`model = "qwen2.5-vl-7b"`, `image_dir = "../data/images"`), and
# the hyperparameters follow the model: the paper's values for a hub model, the miniature's own for the miniature.

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
    # %pip install -q -e "..[gpu]"
    for d in site.getsitepackages():
        site.addsitedir(d)  # read the new editable-install .pth now, without restarting the runtime

# %% tags=["parameters"]
# Parameters (papermill overrides these). Defaults: the miniature world on a CPU, ~2 CPU-minutes.
# None = the model's preset (evolmm_lib.presets; printed below): the miniature trains 200 steps with lr 1e-3,
# β0 0.05, β ≤ 1 and 16 tokens (validated for it in notebook 06); a hub model, a local folder, random:* and tiny
# get the paper's / official values (lr 1e-6, β0 1e-3, β ≤ 100, 128 tokens, 100 steps unless steps is set).
# On a GPU (Colab T4): model = "qwen2.5-vl-3b", update = "qlora", steps = 500, image_dir = "../data/images".
# Paper run: model = "qwen2.5-vl-7b", update = "lora", steps = 16180, image_dir = your raw-image pool.
model = "miniature"        # or "tiny" (random weights: tests and smoke runs), a hub id, a local folder
recipe = "paper"           # or "official": what the authors' src/train.py runs (papers/evolmm.md, "What the official code runs")
steps = None
num_solver_samples = 5
reward = "continuous"      # or "discrete" (ablation)
advantage = "ema"          # or "group" (GRPO-style)
update = "lora"            # or "qlora" (GPU), "full"
max_new_tokens = None      # both roles' budget
lr = None                  # paper: 1e-6 for 7B; the 2.2M miniature needs a 1000x larger step to move in 200 steps
kl_coef = None             # β0; adaptive β then chases the KL target
kl_max = None              # β's ceiling (official: 1e2, which runs away at the miniature's scale)
proposer_update_freq = 5
image_dir = None           # training images; None: the miniature world's unlabelled pool, written to run_dir/world/pool
run_dir = "../runs/notebooks"

# %% [markdown]
# ## Configuration
# Every hyperparameter lives in `EvoLMMConfig`; the notebook sets a few, the model's preset fills the ones left at
# `None`, and the cell prints every value that is not a default, with where it came from. `recipe` picks between the
# paper's text (`"paper"`) and what the official script runs (`"official"`: sampling settings from the checkpoint's
# `generation_config.json`, no image in the update forward, the active adapter as KL reference, a Proposer that is
# never updated, one AdamW step per sample). Both log their effective generation settings when training starts.

# %%
import json
from pathlib import Path

# %matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from evolmm_lib.miniature import world as W
from evolmm_lib.miniature.diagnostics import own_answer, phases
from evolmm_lib.presets import notebook_config

out = Path(run_dir) / "train"  # notebook 05 evaluates the newest checkpoint here
world = None
if image_dir is None:
    world, image_dir = W.write_world_images(Path(run_dir) / "world" / "pool")
config = notebook_config(model, recipe=recipe, total_steps=steps, num_solver_samples=num_solver_samples, reward=reward,
                         advantage=advantage, update=update, max_new_tokens_solver=max_new_tokens,
                         max_new_tokens_proposer=max_new_tokens, lr=lr, kl_coef=kl_coef, kl_max=kl_max,
                         proposer_update_freq=proposer_update_freq, data_dir=str(Path(image_dir).resolve()),
                         output_dir=str(out))
config = config.replace(save_every=max(1, config.total_steps // 2))
config

# %% [markdown]
# ## Train
# `train()` loads the backbone (Unsloth on a CUDA GPU, transformers + peft on the CPU), resumes if asked, and writes
# `log.jsonl` and `checkpoint-<step>/`. `resume=True` also starts a fresh run when the folder holds no checkpoint.

# %%
from evolmm_lib.trainer import train

trainer = train(config, resume=True)
logs = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
print(len(logs), "steps logged; checkpoints:", sorted(p.name for p in out.glob("checkpoint-*")))
logs[-1]["question"], logs[-1]["solver_answers"]

# %% [markdown]
# ## What the Proposer asked and how the Solver agreed
# On the miniature world a question either is one of the world's 15 templates or is not
# (`W.world_question_rate`); the majority fraction (agreement) of the N answers varies from question to question.
# The exact answers are used for this report only, never by the training.

# %%
df = pd.DataFrame(logs).set_index("step")
questions = df["question"].tolist()
report = {"steps": len(df), "world_question_rate": W.world_question_rate(questions),
          "distinct_questions": len(set(questions)),
          "majority_fraction_values": sorted(set(df["majority_fraction"].round(2))),
          "agreement_min": float(df["majority_fraction"].min()), "agreement_max": float(df["majority_fraction"].max())}
if world is not None:
    df["exact_answer"], df["solver_correct"] = zip(*(own_answer(r, world) for r in logs))
print(json.dumps(report, indent=1))
df[["question", "solver_answers_normalized", "majority_fraction", "entropy", "proposer_reward"]
   + (["exact_answer"] if world is not None else [])].head(8)

# %% [markdown]
# ## Curves (cf. the paper's training figures)
# Per-step values are noisy (one image, one question, N answers per step): thin lines are the steps, thick ones a
# moving average over `window` steps. Solver reward (continuous and discrete) and majority fraction, Proposer reward,
# answer entropy H against the band's centre μ_H, β and KL for both roles.

# %%
window = max(1, len(df) // 10)
smooth = df.select_dtypes("number").rolling(window, min_periods=1).mean()
fig, ax = plt.subplots(2, 3, figsize=(15, 7))
for i, col in enumerate(["solver_reward_continuous", "solver_reward_discrete", "majority_fraction"]):
    ax[0, 0].plot(df.index, df[col], color=f"C{i}", alpha=0.15)
    ax[0, 0].plot(smooth.index, smooth[col], color=f"C{i}", label=col)
ax[0, 0].set_title("Solver"); ax[0, 0].legend(fontsize=7)
ax[0, 1].plot(df.index, df["proposer_reward"], color="C3", alpha=0.15)
ax[0, 1].plot(smooth.index, smooth["proposer_reward"], color="C3")
ax[0, 1].set_title("Proposer reward (band-pass of H)")
ax[0, 2].plot(df.index, df["entropy"], color="C4", alpha=0.15)
ax[0, 2].plot(smooth.index, smooth["entropy"], color="C4", label="H")
ax[0, 2].axhline(config.prop_entropy_mu, color="k", ls="--", label="μ_H"); ax[0, 2].legend(fontsize=7)
ax[0, 2].set_title("answer entropy H (nats)")
ax[1, 0].plot(df.index, df["beta_solver"], label="β solver"); ax[1, 0].plot(df.index, df["beta_proposer"], label="β proposer")
ax[1, 0].set_yscale("log"); ax[1, 0].set_title("β (adaptive KL coefficient)"); ax[1, 0].legend(fontsize=7)
ax[1, 1].plot(df.index, df["kl_solver"], color="C0", alpha=0.25)
ax[1, 1].plot(smooth.index, smooth["kl_solver"], color="C0", label="KL solver")
ax[1, 1].plot(df["kl_proposer"].dropna().index, df["kl_proposer"].dropna(), "o", ms=3, color="C1", label="KL proposer")
ax[1, 1].axhline(config.kl_target, color="k", ls="--", label="KL target"); ax[1, 1].set_yscale("symlog", linthresh=1e-3)
ax[1, 1].set_ylim(bottom=0)
ax[1, 1].set_title("KL(π‖π_ref) per token"); ax[1, 1].legend(fontsize=7)
if "solver_correct" in df:
    ax[1, 2].plot(smooth.index, df["solver_correct"].astype(float).rolling(window, min_periods=1).mean(), color="C2")
    ax[1, 2].set_title("Solver correct on its own questions\n(exact answers: report only)")
else:
    ax[1, 2].axis("off")
for a in ax.flat:
    a.set_xlabel("step")
fig.tight_layout(); fig.savefig(out / "curves.png", dpi=80)
plt.show()

# %% [markdown]
# ## Early vs late
# The means over the first and last quarter of the run (`diagnostics.phases`, as notebook 06): what moved and what did not. The band-pass rewards questions
# whose answers are neither unanimous nor random; over a long run the entropy distribution moves toward μ_H.

# %%
early, late = phases(list(range(len(df)))).values()  # row positions of the first and last quarter
cols = ["solver_reward_continuous", "majority_fraction", "proposer_reward", "entropy", "beta_solver", "kl_solver"]
cols += ["solver_correct"] if "solver_correct" in df else []
early_late = pd.DataFrame({"early": df[cols].iloc[early].astype(float).mean(),
                           "late": df[cols].iloc[late].astype(float).mean()})
report["early_late"] = early_late.round(4).to_dict()
(out / "report.json").write_text(json.dumps(report, indent=1))
display(early_late.round(3))
fig, ax = plt.subplots(figsize=(5, 3))
ax.hist([df["entropy"].iloc[early], df["entropy"].iloc[late]], label=["early", "late"], bins=8)
ax.axvline(config.prop_entropy_mu, color="k", ls="--", label="μ_H"); ax.legend(); ax.set_xlabel("answer entropy H (nats)")
fig.savefig(out / "entropy_early_late.png", dpi=80)
plt.show()

# %% [markdown]
# ## Reading the curves
# What we saw with these defaults (2026-12-03, 2 CPU cores, 68 s; `papers/results/notebook04_report.json`; your
# numbers differ a little from run to run): 94% of the Proposer's questions were world questions, and the majority
# fraction took every value from 0.2 to 1.0. Early → late (first vs last quarter of 200 steps): answer entropy
# 0.62 → 0.77 nats, moving toward μ_H = 0.9, and the Proposer reward 0.57 → 0.63. This is the band-pass at work: the
# Proposer learns to ask questions on which the Solver neither always agrees nor never agrees. The Solver's agreement
# went the other way (majority fraction 0.70 → 0.63, continuous reward 0.70 → 0.63), because harder questions give
# less agreement. β climbed from 0.15 to 0.41 on average as the per-token KL (0.030 → 0.045) stayed above its target
# of 0.02. The share of the N samples giving the exact answer moved 0.15 → 0.19, but 200 steps of one image each are
# too few for the Solver's accuracy to move reliably: notebook 06 measures that over seeds, and notebook 05 compares
# base and trained Solver on the held-out test split.

# %% [markdown]
# ## Save, reload, resume
# The checkpoint's `solver/` and `proposer/` folders are PEFT adapters; `load_backbone(adapters_from=...)` reloads both, and `train(..., resume=True)` continues from the newest checkpoint.

# %%
import torch
from evolmm_lib.backbone import load_backbone
from evolmm_lib.checkpoint import latest_checkpoint

last = latest_checkpoint(out)
reloaded = load_backbone(config=config, adapters_from=last)
same = all(torch.equal(a, b) for a, b in zip(reloaded.trainable_parameters("solver"),
                                             trainer.backbone.trainable_parameters("solver")))
print(last.name, "reloaded solver identical:", same)
assert same
more = train(config.replace(total_steps=config.total_steps + 2), resume=True)
print("resumed to step", more.global_step)
json.dump({"steps": more.global_step, "last_checkpoint": str(latest_checkpoint(out).name)},
          open(out / "summary.json", "w"))
