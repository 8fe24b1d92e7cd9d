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
# # 01 · The backbone: one model, two roles
#
# EvoLMM (arXiv 2511.16672) runs a single vision-language backbone (Qwen2.5-VL) in two roles, each a LoRA adapter on the language model: the **Proposer** asks a question about an image, the **Solver** answers it N times. The frozen base with adapters disabled is the reference policy π_ref of the KL penalty (coefficient β).
#
# This notebook loads the backbone, inspects its parameters, adapters, backend and dtype, renders the chat template, and turns one image into text with the Solver role and with the reference.
#
# **Which world this notebook runs.** On the CPU the default `model = "miniature"` is a 2.2M-parameter Qwen2.5-VL with the
# real architecture, processor and chat template, warm-started (shipped in `data/miniature/`) on the kit's
# **miniature world**: 112×112 images of 1–6 coloured squares and circles on a 4×4 grid, with counting
# questions such as *How many red squares are in the image?* (`evolmm_lib.miniature.world`). It half-knows
# that world, so its text is readable there, and nowhere else. `model = "tiny"` (random weights, gibberish) is for
# tests and smoke runs. On a GPU set `model = "qwen2.5-vl-7b"` in the parameters cell (or `-p model=qwen2.5-vl-7b`
# with papermill; the token budget follows the model) and point the image parameters at real images.

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
# On a GPU: model = "qwen2.5-vl-7b", image_path = "../data/images/bar_chart_1.png",
# question = "What is the value of the tallest bar?" (backend "auto" then picks Unsloth).
# None = the model's preset (evolmm_lib.presets): miniature 16 tokens, hub models 128.
model = "miniature"  # or "tiny" (random weights: tests), "qwen2.5-vl-7b", a hub id, a local folder
max_new_tokens = None
image_path = None  # None: the first held-out test image of the miniature world, with its question
question = None
run_dir = "../runs/notebooks"

# %%
import json
from pathlib import Path

# %matplotlib inline
import matplotlib.pyplot as plt

from evolmm_lib.backbone import load_backbone, language_model_lora_regex
from evolmm_lib.images import load_image
from evolmm_lib.miniature.world import make_world

out = Path(run_dir) / "01_backbone"
out.mkdir(parents=True, exist_ok=True)
from evolmm_lib.presets import notebook_config

config = notebook_config(model, max_new_tokens_solver=max_new_tokens, max_new_tokens_proposer=max_new_tokens)
backbone = load_backbone(config=config)
print("model:", backbone.name, "| backend:", backbone.backend, "| device:", backbone.device,
      "| dtype:", next(backbone.model.parameters()).dtype)
if image_path is None:  # the miniature world's labelled test split: the exact answer is known
    item = make_world(0, n_warmstart=0, n_pool=0).test[0]
    image, question, title = item.image, question or item.question, f"miniature world test item 0 (answer {item.answer})"
else:
    image, title = load_image(image_path), Path(image_path).name
question = question or "What is shown in the image?"
print("image:", title, "| question:", question)

# %% [markdown]
# ## Parameters and adapters
# Two LoRA adapters, `solver` and `proposer` (r=16, α=32, dropout 0.05), on the q, k, v, o, gate, up, down projections of the language model only; the vision tower stays frozen. Only the active role's LoRA weights are trained.

# %%
summary = backbone.parameter_summary()
for k, v in summary.items():
    print(f"{k:>9}: {v:>12,d} parameters")
print("trainable share per role: %.3f%%" % (100 * summary["solver"] / summary["total"]))
print("adapters:", list(backbone.model.peft_config) if backbone.is_lora else "full copies (update='full')")
print("LoRA target regex:", language_model_lora_regex(config.lora_target_modules))
lora_modules = sorted({n.rsplit(".lora_", 1)[0] for n, _ in backbone.model.named_parameters() if ".lora_A.solver" in n})
print(len(lora_modules), "adapted modules, e.g.", lora_modules[:3])
print("vision modules adapted:", sum("visual" in m for m in lora_modules))

# %% [markdown]
# ## The chat template
# Both roles see the image through Qwen2.5-VL's vision tokens (`<|vision_start|><|image_pad|>…<|vision_end|>`) followed by the role's prompt. The prompts are the official strings (`evolmm_lib.prompts`).

# %%
from evolmm_lib.prompts import PROPOSER_PROMPT, build_solver_prompt
from evolmm_lib.rollout import render_prompt

solver_prompt = build_solver_prompt(question)
print(render_prompt(backbone, solver_prompt))
print("--- proposer prompt ---")
print(PROPOSER_PROMPT)

# %% [markdown]
# ## One image → text
# Greedy decoding, once with the Solver adapter and once with the frozen reference π_ref.

# %%
fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.imshow(image)
ax.set_title(title, fontsize=9)
ax.axis("off")
fig.savefig(out / "image.png", bbox_inches="tight")  # saved under the run folder, and shown inline
plt.show()
print("image size:", image.size)

# %%
from evolmm_lib.prompts import parse_answer
from evolmm_lib.rollout import generate

texts = {}
for role in ("solver", None):
    gen = generate(backbone, role, [image], [solver_prompt], max_new_tokens=max_new_tokens, do_sample=False)
    texts[role or "reference"] = gen.texts[0]
    print(f"[{role or 'reference'}] {len(gen.completion_ids[0])} tokens")
    print("  text:  ", repr(gen.texts[0][:300]))
    print("  answer:", repr(parse_answer(gen.texts[0])[:120]))
print("solver == reference:", texts["solver"] == texts["reference"])

# %% [markdown]
# LoRA's B matrices start at zero, so before any training the Solver and the reference produce the same greedy text; they drift apart as training moves the adapter (notebook 04), and the KL term β·KL(π‖π_ref) keeps that drift small.

# %%
record = {"model": backbone.name, "backend": backbone.backend, "device": str(backbone.device),
          "dtype": str(next(backbone.model.parameters()).dtype), "parameters": summary,
          "adapted_modules": len(lora_modules), "texts": texts}
(out / "backbone.json").write_text(json.dumps(record, indent=2))
print("wrote", out / "backbone.json")
