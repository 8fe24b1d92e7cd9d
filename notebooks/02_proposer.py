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
# # 02 · The Proposer: questions from raw images
#
# Step 1 of EvoLMM: the Proposer sees an unlabelled image and writes one short-answer, image-grounded question, wrapped as `<question>…</question>` followed by a `<rationale>…</rationale>`. All images of a batch go through **one** batched `generate` call (temperature 1.0, top_p 1.0, up to 128 new tokens in the paper).
#
# We parse the questions with the official fallbacks, measure their length and diversity (distinct n-grams), and show a small gallery.
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
# On a GPU: model = "qwen2.5-vl-7b", num_images = 12, image_dir = "../data/images".
# None = the model's preset (evolmm_lib.presets): miniature 16 tokens, hub models 128.
model = "miniature"  # or "tiny" (random weights: tests), "qwen2.5-vl-7b", a hub id, a local folder
num_images = 9
max_new_tokens = None
image_dir = None  # training images; None: the miniature world's unlabelled pool, written to run_dir/world/pool
seed = 42
run_dir = "../runs/notebooks"

# %%
import json
from pathlib import Path

# %matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd

from evolmm_lib import analysis
from evolmm_lib.backbone import load_backbone
from evolmm_lib.images import ImagePool
from evolmm_lib.miniature import world as W
from evolmm_lib.rollout import propose_questions

out = Path(run_dir) / "02_proposer"
out.mkdir(parents=True, exist_ok=True)
world = None
if image_dir is None:
    world, image_dir = W.write_world_images(Path(run_dir) / "world" / "pool")
from evolmm_lib.presets import notebook_config

config = notebook_config(model, max_new_tokens_proposer=max_new_tokens, seed=seed, data_dir=str(image_dir))
backbone = load_backbone(config=config)
pool = ImagePool(str(image_dir), seed=seed)
batch = [pool.next() for _ in range(min(num_images, len(pool.paths)))]
images, paths = [b[0] for b in batch], [b[1] for b in batch]
print(f"{len(pool.paths)} images in {image_dir}; this batch:", [Path(p).name for p in paths])

# %% [markdown]
# ## Parsing with the official fallbacks
# The question is the text of the `<question>` tag; when the tag is missing the whole output (newlines → spaces) is the question; an empty output falls back to a fixed question.

# %%
from evolmm_lib.prompts import parse_question

for raw in ["<question>What is the value of the tallest bar?</question>\n<rationale>It reads a number.</rationale>",
            "How many red circles are there?\nThe image has circles.",
            ""]:
    print(f"{raw[:60]!r:66} -> {parse_question(raw)!r}")

# %% [markdown]
# ## Proposals for the batch
# On the miniature world the Proposer was warm-started on the world's 15 question templates, so most questions
# should parse as world questions (`W.parse_world_question`); the world also knows each one's exact answer.
# Those labels are for reading only: EvoLMM never trains on them.
# The shipped warm start's Proposer learned from questions whatever their answer, so it often asks about objects
# that are not in the image (exact answer 0). `WarmStartRecipe(proposer_grounded=True)` trains one that asks about
# present objects only; it is not shipped, and building it takes about 8.5 CPU-minutes.

# %%
from evolmm_lib.prompts import strip_tags

proposals, generation = propose_questions(backbone, images, config)
table = pd.DataFrame({
    "image": [Path(p).name for p in paths],
    "tagged": [strip_tags(p.raw, "question") is not None for p in proposals],
    "tokens": [len(ids) for ids in generation.completion_ids],
    "question": [p.question for p in proposals],
})
if world is not None:  # the world knows every answer: is the question one of its 15, and what is the answer?
    table["world question"] = [W.parse_world_question(p.question) is not None for p in proposals]
    table["exact answer"] = [W.pool_answer(world, path, p.question) for path, p in zip(paths, proposals)]
table.to_csv(out / "proposals.csv", index=False)
table

# %% [markdown]
# ## Length and diversity
# distinct-n = unique word n-grams / all word n-grams across the batch (1.0: no repetition). A Proposer collapsing onto one template shows up as falling distinct-2.

# %%
questions = [p.question for p in proposals]
stats = analysis.question_stats(questions)
stats["tagged_fraction"] = float(table["tagged"].mean())
stats["world_question_rate"] = W.world_question_rate(questions)  # share that parse as the world's questions
(out / "question_stats.json").write_text(json.dumps(stats, indent=2))
for k, v in stats.items():
    print(f"{k:>16}: {v:.3f}" if isinstance(v, float) else f"{k:>16}: {v}")

# %% [markdown]
# ## Gallery

# %%
import textwrap

cols = 3
rows = (len(images) + cols - 1) // cols
fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4.2 * rows), squeeze=False)
for ax in axes.flat[len(images):]:
    ax.axis("off")
for ax, im, q, path in zip(axes.flat, images, questions, paths):
    ax.imshow(im)
    ax.set_xticks([]); ax.set_yticks([])  # keep the frame: world images have a white background
    exact = W.pool_answer(world, path, q) if world is not None else None
    ax.set_title("\n".join(textwrap.wrap(q[:120], 38)) + ("" if exact is None else f"\n(exact answer: {exact})"),
                 fontsize=9)
fig.tight_layout()
fig.savefig(out / "gallery.png", dpi=80)
plt.show()
