"""Write notebooks 01–03 (without outputs) from the cell sources below: `python notebooks/build_notebooks.py`.

Edit the cells here, re-run, and check with `python -m evolmm_lib notebooks --only 01 02 03`.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

INSTALL = '''import sys
if "google.colab" in sys.modules:  # Colab only: in the cloned kit's notebooks/ folder, install it (Unsloth on the GPU)
    !pip install -q -e "..[gpu]"'''

IMPORTS = '''import json
import sys
from pathlib import Path

if (Path.cwd().parent / "evolmm_lib").is_dir() and str(Path.cwd().parent) not in sys.path:
    sys.path.insert(0, str(Path.cwd().parent))  # run from notebooks/ without installing the kit
%matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd

from evolmm_lib.config import EvoLMMConfig'''

TINY_NOTE = ("**About the default model.** `model=\"tiny\"` is an embedded Qwen2.5-VL with the real architecture, "
             "processor and chat template but *random weights*, built offline in seconds: its text is gibberish. "
             "It is here so that every cell runs on a CPU without the hub. On a GPU set `model=\"qwen2.5-vl-7b\"` "
             "(and a larger `max_new_tokens`) in the parameters cell — or pass `-p model qwen2.5-vl-7b` to papermill — "
             "and the same cells produce real questions and answers.")


def params(lines: str):
    cell = new_code_cell(lines)
    cell.metadata["tags"] = ["parameters"]
    return cell


def notebook(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def nb01():
    return notebook([
        new_markdown_cell(
            "# 01 · The backbone: one model, two roles\n\n"
            "EvoLMM (arXiv 2511.16672) runs a single vision-language backbone (Qwen2.5-VL) in two roles, each a LoRA "
            "adapter on the language model: the **Proposer** asks a question about an image, the **Solver** answers it "
            "N times. The frozen base with adapters disabled is the reference policy π_ref of the KL penalty (coefficient β).\n\n"
            "This notebook loads the backbone, inspects its parameters, adapters, backend and dtype, renders the chat "
            "template, and turns one image into text with the Solver role and with the reference.\n\n" + TINY_NOTE),
        new_code_cell(INSTALL),
        params('''# Parameters (papermill overrides these). Defaults: the offline tiny model on a CPU.
# On a GPU: model = "qwen2.5-vl-7b", max_new_tokens = 128 (backend "auto" then picks Unsloth).
model = "tiny"
max_new_tokens = 32
image_path = "../data/images/bar_chart_1.png"
question = "What is the value of the tallest bar?"
run_dir = "../runs/notebooks"'''),
        new_code_cell(IMPORTS + '''
from evolmm_lib.backbone import load_backbone, language_model_lora_regex
from evolmm_lib.images import load_image

out = Path(run_dir) / "01_backbone"
out.mkdir(parents=True, exist_ok=True)
config = EvoLMMConfig(model=model, max_new_tokens_solver=max_new_tokens, max_new_tokens_proposer=max_new_tokens)
backbone = load_backbone(config=config)
print("model:", backbone.name, "| backend:", backbone.backend, "| device:", backbone.device,
      "| dtype:", next(backbone.model.parameters()).dtype)'''),
        new_markdown_cell(
            "## Parameters and adapters\n"
            "Two LoRA adapters, `solver` and `proposer` (r=16, α=32, dropout 0.05), on the q, k, v, o, gate, up, down "
            "projections of the language model only; the vision tower stays frozen. Only the active role's LoRA "
            "weights are trained."),
        new_code_cell('''summary = backbone.parameter_summary()
for k, v in summary.items():
    print(f"{k:>9}: {v:>12,d} parameters")
print("trainable share per role: %.3f%%" % (100 * summary["solver"] / summary["total"]))
print("adapters:", list(backbone.model.peft_config) if backbone.is_lora else "full copies (update='full')")
print("LoRA target regex:", language_model_lora_regex(config.lora_target_modules))
lora_modules = sorted({n.rsplit(".lora_", 1)[0] for n, _ in backbone.model.named_parameters() if ".lora_A.solver" in n})
print(len(lora_modules), "adapted modules, e.g.", lora_modules[:3])
print("vision modules adapted:", sum("visual" in m for m in lora_modules))'''),
        new_markdown_cell(
            "## The chat template\n"
            "Both roles see the image through Qwen2.5-VL's vision tokens (`<|vision_start|><|image_pad|>…<|vision_end|>`) "
            "followed by the role's prompt. The prompts are the official strings (`evolmm_lib.prompts`)."),
        new_code_cell('''from evolmm_lib.prompts import PROPOSER_PROMPT, build_solver_prompt
from evolmm_lib.rollout import render_prompt

solver_prompt = build_solver_prompt(question)
print(render_prompt(backbone, solver_prompt))
print("--- proposer prompt ---")
print(PROPOSER_PROMPT)'''),
        new_markdown_cell("## One image → text\nGreedy decoding, once with the Solver adapter and once with the frozen reference π_ref."),
        new_code_cell('''image = load_image(image_path)
fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.imshow(image)
ax.set_title(Path(image_path).name)
ax.axis("off")
fig.savefig(out / "image.png", bbox_inches="tight")
plt.show()
print("image size:", image.size)'''),
        new_code_cell('''from evolmm_lib.prompts import parse_answer
from evolmm_lib.rollout import generate

texts = {}
for role in ("solver", None):
    gen = generate(backbone, role, [image], [solver_prompt], max_new_tokens=max_new_tokens, do_sample=False)
    texts[role or "reference"] = gen.texts[0]
    print(f"[{role or 'reference'}] {len(gen.completion_ids[0])} tokens")
    print("  text:  ", repr(gen.texts[0][:300]))
    print("  answer:", repr(parse_answer(gen.texts[0])[:120]))
print("solver == reference:", texts["solver"] == texts["reference"])'''),
        new_markdown_cell(
            "LoRA's B matrices start at zero, so before any training the Solver and the reference produce the same "
            "greedy text; they drift apart as training moves the adapter (notebook 04), and the KL term β·KL(π‖π_ref) "
            "keeps that drift small."),
        new_code_cell('''record = {"model": backbone.name, "backend": backbone.backend, "device": str(backbone.device),
          "dtype": str(next(backbone.model.parameters()).dtype), "parameters": summary,
          "adapted_modules": len(lora_modules), "texts": texts}
(out / "backbone.json").write_text(json.dumps(record, indent=2))
print("wrote", out / "backbone.json")'''),
    ])


def nb02():
    return notebook([
        new_markdown_cell(
            "# 02 · The Proposer: questions from raw images\n\n"
            "Step 1 of EvoLMM: the Proposer sees an unlabelled image and writes one short-answer, image-grounded "
            "question, wrapped as `<question>…</question>` followed by a `<rationale>…</rationale>`. All images of a batch "
            "go through **one** batched `generate` call (temperature 1.0, top_p 1.0, up to 128 new tokens in the paper).\n\n"
            "We parse the questions with the official fallbacks, measure their length and diversity (distinct n-grams), "
            "and show a small gallery.\n\n" + TINY_NOTE),
        new_code_cell(INSTALL),
        params('''# Parameters (papermill overrides these). Defaults: the offline tiny model on a CPU.
# On a GPU: model = "qwen2.5-vl-7b", max_new_tokens = 128, num_images = 12.
model = "tiny"
num_images = 6
max_new_tokens = 48
data_dir = "../data/images"
seed = 42
run_dir = "../runs/notebooks"'''),
        new_code_cell(IMPORTS + '''
from evolmm_lib import analysis
from evolmm_lib.backbone import load_backbone
from evolmm_lib.images import ImagePool
from evolmm_lib.rollout import propose_questions

out = Path(run_dir) / "02_proposer"
out.mkdir(parents=True, exist_ok=True)
config = EvoLMMConfig(model=model, max_new_tokens_proposer=max_new_tokens, seed=seed, data_dir=data_dir)
backbone = load_backbone(config=config)
pool = ImagePool(data_dir, seed=seed)
batch = [pool.next() for _ in range(min(num_images, len(pool.paths)))]
images, paths = [b[0] for b in batch], [b[1] for b in batch]
print(f"{len(pool.paths)} images in {data_dir}; this batch:", [Path(p).name for p in paths])'''),
        new_markdown_cell("## Parsing with the official fallbacks\n"
                          "The question is the text of the `<question>` tag; when the tag is missing the whole output "
                          "(newlines → spaces) is the question; an empty output falls back to a fixed question."),
        new_code_cell('''from evolmm_lib.prompts import parse_question

for raw in ["<question>What is the value of the tallest bar?</question>\\n<rationale>It reads a number.</rationale>",
            "How many red circles are there?\\nThe image has circles.",
            ""]:
    print(f"{raw[:60]!r:66} -> {parse_question(raw)!r}")'''),
        new_markdown_cell("## Proposals for the batch"),
        new_code_cell('''from evolmm_lib.prompts import strip_tags

proposals, generation = propose_questions(backbone, images, config)
table = pd.DataFrame({
    "image": [Path(p).name for p in paths],
    "tagged": [strip_tags(p.raw, "question") is not None for p in proposals],
    "tokens": [len(ids) for ids in generation.completion_ids],
    "question": [p.question for p in proposals],
})
table.to_csv(out / "proposals.csv", index=False)
table'''),
        new_markdown_cell("## Length and diversity\n"
                          "distinct-n = unique word n-grams / all word n-grams across the batch (1.0: no repetition). "
                          "A Proposer collapsing onto one template shows up as falling distinct-2."),
        new_code_cell('''questions = [p.question for p in proposals]
stats = analysis.question_stats(questions)
stats["tagged_fraction"] = float(table["tagged"].mean())
(out / "question_stats.json").write_text(json.dumps(stats, indent=2))
for k, v in stats.items():
    print(f"{k:>16}: {v:.3f}" if isinstance(v, float) else f"{k:>16}: {v}")'''),
        new_markdown_cell("## Gallery"),
        new_code_cell('''import textwrap

cols = 3
rows = (len(images) + cols - 1) // cols
fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4.2 * rows), squeeze=False)
for ax in axes.flat:
    ax.axis("off")
for ax, im, q in zip(axes.flat, images, questions):
    ax.imshow(im)
    ax.set_title("\\n".join(textwrap.wrap(q[:120], 38)), fontsize=8)
fig.tight_layout()
fig.savefig(out / "gallery.png", dpi=80)
plt.show()'''),
    ])


def nb03():
    return notebook([
        new_markdown_cell(
            "# 03 · Solver self-consistency and the two rewards\n\n"
            "Step 2 of EvoLMM: the Solver answers each question **N** times (one batched `generate`, N=5 in the paper). "
            "Answers are extracted (`<answer>` tag, else last non-empty line, else `unknown`), normalised, and compared.\n\n"
            "* Solver, continuous reward (paper Eq. 3): r_i = p(a_i)^γ · (1 − λ_len · min(1, max(0, (w_i − τ)/τ))), "
            "p(a_i) the share of the N samples giving the same answer, γ = 0.7, λ_len = 0.10, τ = 6 words before `<answer>`.\n"
            "* Solver, discrete ablation: 1 for samples equal to the majority answer, else 0.\n"
            "* Proposer (paper Eq. 4): band-pass on the answer entropy H (nats), exp(−(H − μ_H)²/(2σ_H²)) with "
            "μ_H = 0.90, σ_H = 0.35 — questions the Solver always agrees on (H = 0) or never agrees on (H = ln N) earn little.\n\n"
            + TINY_NOTE + " With random weights nearly every answer differs, so agreement is low and H is near ln N; "
            "the analytic plots below show the whole range."),
        new_code_cell(INSTALL),
        params('''# Parameters (papermill overrides these). Defaults: the offline tiny model on a CPU.
# On a GPU: model = "qwen2.5-vl-7b", max_new_tokens = 128, num_questions = 8.
model = "tiny"
num_questions = 3
num_solver_samples = 5   # N
max_new_tokens = 24
data_dir = "../data/images"
seed = 42
run_dir = "../runs/notebooks"'''),
        new_code_cell(IMPORTS + '''
from evolmm_lib import analysis
from evolmm_lib.backbone import load_backbone
from evolmm_lib.images import ImagePool
from evolmm_lib.rollout import propose_questions, sample_answers

out = Path(run_dir) / "03_solver_consistency"
out.mkdir(parents=True, exist_ok=True)
config = EvoLMMConfig(model=model, num_solver_samples=num_solver_samples, max_new_tokens_solver=max_new_tokens,
                      max_new_tokens_proposer=max_new_tokens, seed=seed, data_dir=data_dir)
N, gamma, mu_H, sigma_H = (config.num_solver_samples, config.solver_soft_gamma,
                           config.prop_entropy_mu, config.prop_entropy_sigma)
print(f"N={N}  γ={gamma}  λ_len={config.len_penalty_weight}  τ={config.len_penalty_target_words}  "
      f"μ_H={mu_H}  σ_H={sigma_H}")
backbone = load_backbone(config=config)
pool = ImagePool(data_dir, seed=seed)
images = [pool.next()[0] for _ in range(num_questions)]
proposals, _ = propose_questions(backbone, images, config)'''),
        new_markdown_cell("## N answers per question\nEach question's N samples come from one `generate` call."),
        new_code_cell('''samples = [sample_answers(backbone, im, p.question, config) for im, p in zip(images, proposals)]
rows = []
for i, s in enumerate(samples):
    row = analysis.consistency_row(s.completions, gamma, config.len_penalty_weight,
                                   config.len_penalty_target_words, mu_H, sigma_H)
    rows.append({"question": s.question[:60], **row})
consistency = pd.DataFrame(rows)
consistency.to_csv(out / "consistency.csv", index=False)
print("mean agreement: %.3f   mean entropy: %.3f nats" % (consistency.agreement.mean(), consistency.entropy.mean()))
consistency.round(3)'''),
        new_markdown_cell("## Answer histograms"),
        new_code_cell('''fig, axes = plt.subplots(1, len(samples), figsize=(4 * len(samples), 3), squeeze=False)
for ax, s, row in zip(axes[0], samples, rows):
    hist = analysis.answer_histogram(s.normalized)
    ax.bar(range(len(hist)), [c for _, c in hist], color="#4C72B0")
    ax.set_xticks(range(len(hist)), [a[:12] or "∅" for a, _ in hist], rotation=45, ha="right", fontsize=7)
    ax.set_ylim(0, N)
    ax.set_title(f"agreement {row['agreement']:.2f}, H {row['entropy']:.2f}", fontsize=9)
axes[0][0].set_ylabel("count of N")
fig.tight_layout()
fig.savefig(out / "answer_histograms.png", dpi=80)
plt.show()'''),
        new_markdown_cell(
            "## Rewards against agreement, for every way N answers can split\n"
            "With N samples the answers form a partition of N (for N=5: 5, 4+1, 3+2, 3+1+1, 2+2+1, 2+1+1+1, 1+1+1+1+1). "
            "`analysis.reward_vs_agreement_table` enumerates them and evaluates the library's reward functions on "
            "short synthetic completions (no length penalty). The continuous reward still pays a minority sample "
            "(1/N)^γ and grades the majority by its size; the discrete one pays only the majority."),
        new_code_cell('''table = pd.DataFrame(analysis.reward_vs_agreement_table(N, gamma, mu_H, sigma_H))
table.to_csv(out / "reward_table.csv", index=False)
table.round(3)'''),
        new_code_cell('''fig, ax = plt.subplots(figsize=(5.5, 4))
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
plt.show()'''),
        new_markdown_cell(
            "## The Proposer's band-pass reward against answer entropy\n"
            "The curve peaks at μ_H and falls to e^(−1/2) at μ_H ± σ_H; dots are the partitions of N, stars the questions above."),
        new_code_cell('''import math

hs, rs = analysis.band_pass_curve(mu_H, sigma_H, h_max=math.log(N) + 0.2)
fig, ax = plt.subplots(figsize=(5.5, 4))
ax.plot(hs, rs, label=f"exp(−(H−μ_H)²/(2σ_H²))")
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
print(f"best partition for the Proposer: {best.partition} (H={best.entropy:.3f}, reward={best.proposer_reward:.3f})")'''),
    ])


BUILDERS = {"01_backbone.ipynb": nb01, "02_proposer.ipynb": nb02, "03_solver_consistency.ipynb": nb03}


def main() -> None:
    for name, build in BUILDERS.items():
        nb = build()
        for i, cell in enumerate(nb.cells):  # stable ids: rebuilding gives an identical file
            cell["id"] = f"{name[:2]}-{i:02d}"
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
