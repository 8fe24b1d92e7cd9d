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
# # 03 · Solver self-consistency and the two rewards
#
# Step 2 of EvoLMM: the Solver answers each question **N** times (one batched `generate`, N=5 in the paper). Answers are extracted (`<answer>` tag, else last non-empty line, else `unknown`), normalised, and compared.
#
# * Solver, continuous reward (paper Eq. 3): r_i = p(a_i)^γ · (1 − λ_len · min(1, max(0, (w_i − τ)/τ))), p(a_i) the share of the N samples giving the same answer, γ = 0.7, λ_len = 0.10, τ = 6 words before `<answer>`.
# * Solver, discrete ablation: 1 for samples equal to the majority answer, else 0.
# * Proposer (paper Eq. 4): band-pass on the answer entropy H (nats), exp(−(H − μ_H)²/(2σ_H²)) with μ_H = 0.90, σ_H = 0.35 — questions the Solver always agrees on (H = 0) or never agrees on (H = ln N) earn little.
#
# **Which world this notebook runs.** On the CPU the default `model = "miniature"` is a 2.2M-parameter Qwen2.5-VL
# warm-started (shipped in `data/miniature/`) on the kit's **miniature world**: 112×112 images of 1–6 coloured
# squares and circles on a 4×4 grid, with counting questions such as *How many red squares are in the image?*
# (`evolmm_lib.miniature.world`). It half-knows that world, so its questions and answers are readable there.
# `model = "tiny"` (random weights, gibberish) is for tests and smoke runs. On a GPU set
# `model = "qwen2.5-vl-7b"` and `image_dir = "../data/images"` (or your images); the token budget follows the model.

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
# Parameters (papermill overrides these). Defaults: the miniature world's warm start on a CPU.
# On a GPU: model = "qwen2.5-vl-7b", num_questions = 8, image_dir = "../data/images".
# None = the model's preset (evolmm_lib.presets): miniature 16 tokens, hub models 128.
model = "miniature"  # or "tiny" (random weights: tests), "qwen2.5-vl-7b", a hub id, a local folder
num_questions = 6
num_solver_samples = 5   # N
max_new_tokens = None
image_dir = None  # training images; None: the miniature world's unlabelled pool, written to run_dir/world/pool
seed = 42
run_dir = "../runs/notebooks"

# %%
from pathlib import Path

# %matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd

from evolmm_lib import analysis
from evolmm_lib.backbone import load_backbone
from evolmm_lib.images import ImagePool
from evolmm_lib.miniature import world as W
from evolmm_lib.rollout import propose_questions, sample_answers

out = Path(run_dir) / "03_solver_consistency"
out.mkdir(parents=True, exist_ok=True)
world = None
if image_dir is None:
    world, image_dir = W.write_world_images(Path(run_dir) / "world" / "pool")
from evolmm_lib.presets import notebook_config

config = notebook_config(model, num_solver_samples=num_solver_samples, max_new_tokens_solver=max_new_tokens,
                         max_new_tokens_proposer=max_new_tokens, seed=seed, data_dir=str(image_dir))
N, gamma, mu_H, sigma_H = (config.num_solver_samples, config.solver_soft_gamma,
                           config.prop_entropy_mu, config.prop_entropy_sigma)
print(f"N={N}  γ={gamma}  λ_len={config.len_penalty_weight}  τ={config.len_penalty_target_words}  "
      f"μ_H={mu_H}  σ_H={sigma_H}")
backbone = load_backbone(config=config)
pool = ImagePool(str(image_dir), seed=seed)
images, paths = zip(*[pool.next() for _ in range(num_questions)])
proposals, _ = propose_questions(backbone, images, config)

# %% [markdown]
# ## N answers per question
# Each question's N samples come from one `generate` call. On the miniature world the Solver is right only some
# of the time, so some questions get unanimous answers (H = 0, Proposer reward near 0), others a split (H near μ_H,
# the Proposer's best case) or a spread. The exact answer is shown for reading only; no reward uses it.

# %%
samples = [sample_answers(backbone, im, p.question, config) for im, p in zip(images, proposals)]
rows = []
for i, s in enumerate(samples):
    row = analysis.consistency_row(s.completions, gamma, config.len_penalty_weight,
                                   config.len_penalty_target_words, mu_H, sigma_H)
    exact = W.pool_answer(world, paths[i], s.question) if world is not None else None
    rows.append({"question": s.question[:60], "answers": " ".join(a[:8] for a in s.normalized),
                 **({} if world is None else {"exact answer": exact}), **row})
consistency = pd.DataFrame(rows)
consistency.to_csv(out / "consistency.csv", index=False)
print("mean agreement: %.3f   mean entropy: %.3f nats" % (consistency.agreement.mean(), consistency.entropy.mean()))
consistency.round(3)

# %% [markdown]
# ## Answer histograms

# %%
cols = min(3, len(samples))
fig, axes = plt.subplots((len(samples) + cols - 1) // cols, cols, figsize=(4 * cols, 3.2 * ((len(samples) + cols - 1) // cols)),
                         squeeze=False)
for ax in axes.flat[len(samples):]:
    ax.axis("off")
for ax, s, row in zip(axes.flat, samples, rows):
    hist = analysis.answer_histogram(s.normalized)
    ax.bar(range(len(hist)), [c for _, c in hist], color="#4C72B0")
    ax.set_xticks(range(len(hist)), [a[:12] or "∅" for a, _ in hist], rotation=45, ha="right", fontsize=7)
    ax.set_ylim(0, N)
    ax.set_title(f"{s.question[:42]}\nagreement {row['agreement']:.2f}, H {row['entropy']:.2f}, "
                 f"r_prop {row['proposer_reward']:.2f}", fontsize=8)
axes[0][0].set_ylabel("count of N")
fig.tight_layout()
fig.savefig(out / "answer_histograms.png", dpi=80)
plt.show()

# %% [markdown]
# ## Rewards against agreement, for every way N answers can split
# With N samples the answers form a partition of N (for N=5: 5, 4+1, 3+2, 3+1+1, 2+2+1, 2+1+1+1, 1+1+1+1+1). `analysis.reward_vs_agreement_table` enumerates them and evaluates the library's reward functions on short synthetic completions (no length penalty). The continuous reward still pays a minority sample (1/N)^γ and grades the majority by its size; the discrete one pays only the majority.

# %%
table = pd.DataFrame(analysis.reward_vs_agreement_table(N, gamma, mu_H, sigma_H))
table.to_csv(out / "reward_table.csv", index=False)
table.round(3)

# %%
fig, ax = plt.subplots(figsize=(5.5, 4))
ax.plot(table.agreement, table.mean_continuous, "o", label=f"continuous, mean over N (γ={gamma})")
ax.plot(table.agreement, table.mean_discrete, "s", label="discrete, mean over N")
ax.plot(table.agreement, table.majority_continuous, "^", label="continuous, a majority sample")
ax.plot(table.agreement, table.minority_continuous, "v", label="continuous, a singleton sample")
for _, r in table.iterrows():
    ax.annotate(r.partition, (r.agreement, r.mean_continuous), textcoords="offset points", xytext=(4, -10), fontsize=7)
ax.scatter(consistency.agreement, consistency.mean_continuous, marker="*", s=120, color="k", zorder=5,
           label=f"observed ({model})")
ax.set_xlabel("agreement (majority fraction)")
ax.set_ylabel("Solver reward")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "solver_reward_vs_agreement.png", dpi=80)
plt.show()

# %% [markdown]
# ## The Proposer's band-pass reward against answer entropy
# The curve peaks at μ_H and falls to e^(−1/2) at μ_H ± σ_H; dots are the partitions of N, stars the questions above.

# %%
import math

hs, rs = analysis.band_pass_curve(mu_H, sigma_H, h_max=math.log(N) + 0.2)
fig, ax = plt.subplots(figsize=(5.5, 4))
ax.plot(hs, rs, label="exp(−(H−μ_H)²/(2σ_H²))")
ax.axvline(mu_H, color="k", ls="--", lw=1, label=f"μ_H = {mu_H}")
ax.axvspan(mu_H - sigma_H, mu_H + sigma_H, color="orange", alpha=0.15, label=f"μ_H ± σ_H (σ_H = {sigma_H})")
ax.scatter(table.entropy.abs(), table.proposer_reward, color="C0", zorder=4, label=f"partitions of N={N}")
for _, r in table.iterrows():
    ax.annotate(r.partition, (abs(r.entropy), r.proposer_reward), textcoords="offset points", xytext=(3, 4), fontsize=7)
ax.scatter(consistency.entropy, consistency.proposer_reward, marker="*", s=120, color="k", zorder=5,
           label=f"observed ({model})")
ax.axvline(math.log(N), color="grey", lw=1, ls=":")
ax.set_xlabel("answer entropy H (nats)")
ax.set_ylabel("Proposer reward")
ax.legend(fontsize=7, loc="upper right")
fig.tight_layout()
fig.savefig(out / "proposer_reward_vs_entropy.png", dpi=80)
plt.show()
best = table.loc[table.proposer_reward.idxmax()]
print(f"best partition for the Proposer: {best.partition} (H={best.entropy:.3f}, reward={best.proposer_reward:.3f})")
