"""Deterministic SFT warm start of both roles on the miniature world (a model that half-knows it).

One slightly bigger tiny Qwen2.5-VL (:data:`WARM_SPEC`, 2.2M parameters) is trained in two stages.

1. Perception: the vision tower alone, with a throw-away linear head that classifies every merged
   image token (= one grid cell) as empty or one of the colour × shape kinds. Trained jointly with
   the language model from random init instead, the tower drifts to an image-independent output
   (the language model first learns the answer prior) and accuracy stays at chance; this stage
   takes seconds and fixes that.
2. Instruction SFT of the whole model on a mixture of the two role tasks, rendered with the kit's
   own prompts:

* Proposer: image + ``PROPOSER_PROMPT`` → ``<question>How many red squares are in the image?</question>``
* Solver:   image + ``build_solver_prompt(q)`` → ``<answer>3</answer>`` (or the reasoning variant's
  ``red square, red square, red square <answer>3</answer>``)

The loss is the mean negative log-likelihood of the completion tokens, computed with the same
teacher-forced path the self-evolution uses (:mod:`evolmm_lib.logprobs`). A short budget keeps the
Solver deliberately imperfect. The result is a plain ``save_pretrained`` folder in the cache, keyed by
the recipe, so ``load_backbone(model=str(path))`` gives both roles the warm start as π_ref.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch

from ..prompts import PROPOSER_PROMPT, build_solver_prompt
from ..cache import build_once, default_cache_dir, save_model_folder
from ..tiny_model import TinySpec, ensure_tiny_model
from .world import COLOURS, GRID, SHAPES, World, make_world

WARM_SPEC = TinySpec(text_hidden=192, text_layers=3, text_heads=4, text_kv_heads=2, text_intermediate=512,
                     vision_hidden=96, vision_depth=3, vision_heads=2, vision_intermediate=192, seed=0)
"""The miniature backbone: text hidden 192 × 3 layers, vision depth 3."""

RECIPE_VERSION = "3"


@dataclass(frozen=True)
class WarmStartRecipe:
    """Everything that determines the warm-start weights."""

    variant: str = "direct"
    world_seed: int = 0
    perception_steps: int = 100
    perception_batch: int = 32
    perception_lr: float = 2e-3
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 30
    freeze_vision: bool = False
    proposer_fraction: float = 0.25
    proposer_grounded: bool = False
    """Proposer targets only from items whose answer is ≥ 1 (questions about objects in the image)."""
    seed: int = 0
    logit_spread: float = 1.0
    """s: after the SFT, the final norm's weight is divided by s, so sampling at T gives what the SFT model
    gives at T·s: same greedy answer (mode), wider samples. s > 1 makes majority-of-N beat one sample."""
    label_noise: float = 0.0
    """q: each time a Solver target is drawn in the SFT, with probability q its answer is moved one count
    up or down (direct variant): the mode stays right, samples spread onto the neighbours."""

    def base(self) -> "WarmStartRecipe":
        """The SFT recipe this one is derived from (itself when ``logit_spread`` is 1)."""
        return dataclasses.replace(self, logit_spread=1.0)

    def key(self) -> str:
        fields = dataclasses.asdict(self)
        for name, default in _ADDED_FIELDS.items():  # enter the key only when set: older keys stay valid
            if fields[name] == default:
                del fields[name]
        blob = json.dumps(fields, sort_keys=True) + WARM_SPEC.key() + RECIPE_VERSION
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


_ADDED_FIELDS = {"proposer_grounded": False, "logit_spread": 1.0, "label_noise": 0.0}
"""Recipe fields added after RECIPE_VERSION 3, with the default that leaves a key unchanged."""


def examples(world: World, recipe: WarmStartRecipe) -> list[tuple]:
    """(image, prompt, target) triples for both roles, in a seeded order."""
    rng = random.Random(recipe.seed)
    out = []
    for it in world.warmstart:
        out.append((it.image, build_solver_prompt(it.question), it.target(recipe.variant)))
        if rng.random() < recipe.proposer_fraction and not (recipe.proposer_grounded and it.answer == 0):
            out.append((it.image, PROPOSER_PROMPT, f"<question>{it.question}</question>"))
    rng.shuffle(out)
    return out


def noisy_targets(batch: list[tuple], q: float, rng: random.Random) -> list[tuple]:
    """``batch`` with each Solver answer ``<answer>n</answer>`` moved to n ± 1 (within 0–6) with probability q."""
    out = []
    for image, prompt, target in batch:
        m = re.fullmatch(r"<answer>(\d)</answer>", target)
        if m and rng.random() < q:
            n = int(m.group(1))
            n = n + 1 if n == 0 else n - 1 if n == 6 else n + rng.choice((-1, 1))
            target = f"<answer>{n}</answer>"
        out.append((image, prompt, target))
    return out


def cell_labels(item) -> list[int]:
    """Per-cell class (0 = empty, else 1 + colour × shape index), row-major like the merged tokens."""
    kinds = [(c, s) for c in COLOURS for s in SHAPES]
    y = [0] * (GRID * GRID)
    for o in item.objects:
        y[o.cell] = 1 + kinds.index((o.colour, o.shape))
    return y


def train_perception(model, processor, world: World, recipe: WarmStartRecipe, log_every: int = 50) -> float:
    """Stage 1: per-cell classification of the vision tower's merged tokens; returns the last accuracy."""
    rng = random.Random(recipe.seed + 1)
    visual = model.model.visual
    head = torch.nn.Linear(model.config.text_config.hidden_size, 1 + len(COLOURS) * len(SHAPES))
    opt = torch.optim.AdamW(list(visual.parameters()) + list(head.parameters()), lr=recipe.perception_lr)
    acc = 0.0
    for step in range(recipe.perception_steps):
        items = rng.sample(world.warmstart, recipe.perception_batch)
        x = processor.image_processor(images=[it.image for it in items], return_tensors="pt")
        out = visual(x["pixel_values"], grid_thw=x["image_grid_thw"])
        feats = out.pooler_output if hasattr(out, "pooler_output") else out
        y = torch.tensor([cell_labels(it) for it in items]).flatten()
        logits = head(feats)
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc = (logits.argmax(-1) == y).float().mean().item()
        if log_every and (step + 1) % log_every == 0:
            print(f"[warmstart] perception step {step + 1}/{recipe.perception_steps} loss {loss.item():.3f} "
                  f"cell accuracy {acc:.3f}", flush=True)
    return acc


def _holder(model, processor):
    """What :func:`evolmm_lib.rollout.encode_prompts` needs from a backbone."""
    return SimpleNamespace(processor=processor, tokenizer=processor.tokenizer, device=next(model.parameters()).device)


def sft_loss(model, processor, batch: list[tuple]) -> torch.Tensor:
    """Mean NLL of the target tokens (+ end of turn), teacher-forced exactly like the RL update."""
    from ..logprobs import completion_logprobs_and_kl, teacher_forced_batch
    from ..rollout import Generation, encode_prompts

    images, prompts, targets = zip(*batch)
    tok = processor.tokenizer
    end = tok.convert_tokens_to_ids("<|im_end|>")
    inputs = encode_prompts(_holder(model, processor), list(images), list(prompts))
    ids = [tok(t, add_special_tokens=False)["input_ids"] + [end] for t in targets]
    tf = teacher_forced_batch(Generation(list(targets), ids, inputs))
    logp, _ = completion_logprobs_and_kl(model, tf)
    return -(logp.sum() / tf.completion_mask.sum())


def train_warmstart(output_dir: str | Path, recipe: WarmStartRecipe = WarmStartRecipe(), log_every: int = 50) -> dict:
    """Run the SFT recipe and save model + processor into ``output_dir``; return timings and losses."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    world = make_world(recipe.world_seed)  # default split sizes: the warm start never depends on a study's
    base = ensure_tiny_model(WARM_SPEC)
    torch.manual_seed(recipe.seed)
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(base)
    processor.tokenizer.padding_side = "left"
    model.train()
    t0, c0 = time.time(), time.process_time()
    cell_accuracy = train_perception(model, processor, world, recipe)
    model.model.visual.requires_grad_(not recipe.freeze_vision)
    data = examples(world, recipe)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / recipe.warmup) * max(0.05, 1 - s / recipe.steps))
    losses = []
    noise = random.Random(f"{recipe.seed}-label-noise")
    for step in range(recipe.steps):
        start = (step * recipe.batch_size) % len(data)
        batch = (data + data)[start: start + recipe.batch_size]
        if recipe.label_noise:
            batch = noisy_targets(batch, recipe.label_noise, noise)
        loss = sft_loss(model, processor, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"[warmstart] step {step + 1}/{recipe.steps} loss {sum(losses[-log_every:]) / log_every:.3f} "
                  f"({time.time() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU)", flush=True)
    info = {"recipe": dataclasses.asdict(recipe), "key": recipe.key(), "spec": dataclasses.asdict(WARM_SPEC),
            "parameters": sum(p.numel() for p in model.parameters()), "perception_cell_accuracy": cell_accuracy,
            "wall_s": round(time.time() - t0, 1), "cpu_s": round(time.process_time() - c0, 1),
            "final_loss": sum(losses[-20:]) / len(losses[-20:]), "losses": losses}
    model.eval()
    save_model_folder(output_dir, model, processor, "evolmm_warmstart.json", info)
    return info


SHIPPED_DIR = Path(__file__).resolve().parents[2] / "data" / "miniature"
"""Where the kit ships the default recipe's result (float16 weights), so CI need not rebuild it."""


def ensure_warmstart(recipe: WarmStartRecipe = WarmStartRecipe(), cache_dir: str | Path | None = None,
                     shipped_dir: str | Path | None = SHIPPED_DIR) -> Path:
    """Path of the warm-started backbone for ``recipe``: the shipped copy, else the cache (trained on first
    use; a ``logit_spread`` recipe is derived from its base recipe's warm start)."""
    if shipped_dir is not None:
        shipped = Path(shipped_dir) / f"miniature-warm-{recipe.key()}"
        if (shipped / "evolmm_warmstart.json").is_file():
            return shipped
    path = Path(cache_dir or default_cache_dir()) / f"miniature-warm-{recipe.key()}"
    if recipe.logit_spread != 1.0:
        base = ensure_warmstart(recipe.base(), cache_dir, shipped_dir)
        return build_once(path, "evolmm_warmstart.json", lambda: spread_warmstart(base, path, recipe))
    return build_once(path, "evolmm_warmstart.json", lambda: train_warmstart(path, recipe))


def spread_warmstart(base_path: str | Path, output_dir: str | Path, recipe: WarmStartRecipe) -> dict:
    """The base warm start with its logits divided by ``recipe.logit_spread`` (final norm weight / s)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(base_path, dtype=torch.float32)
    with torch.no_grad():
        model.model.language_model.norm.weight.div_(recipe.logit_spread)
    info = {**{k: v for k, v in warmstart_info(base_path).items() if k not in ("losses", "shipped_dtype")},
            "recipe": dataclasses.asdict(recipe), "key": recipe.key(), "derived_from": recipe.base().key()}
    save_model_folder(output_dir, model, AutoProcessor.from_pretrained(base_path), "evolmm_warmstart.json", info)
    return info


def warmstart_info(path: str | Path) -> dict:
    return json.loads((Path(path) / "evolmm_warmstart.json").read_text())


def ship(path: str | Path, dest_root: str | Path = SHIPPED_DIR) -> Path:
    """Copy a warm start into ``dest_root`` with float16 weights (half the size; loaded back as float32)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = Path(path)
    info = {k: v for k, v in warmstart_info(path).items() if k != "losses"}
    dest = Path(dest_root) / f"miniature-warm-{info['key']}"
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float16)
    model.save_pretrained(dest)
    AutoProcessor.from_pretrained(path).save_pretrained(dest)
    (dest / "evolmm_warmstart.json").write_text(json.dumps({**info, "shipped_dtype": "float16"}, indent=1))
    return dest
