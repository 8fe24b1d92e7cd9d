"""The two recipes as data: what the paper describes (``PAPER``) and what the official ``src/train.py`` runs
(``OFFICIAL``). Each field is one behaviour that differs; the rest of the kit asks the recipe object
(:func:`recipe_of`) and never compares a recipe's name. Evidence for every official value, with line numbers of
the script, is in ``papers/evolmm.md`` ("What the official code runs"), whose switch table is generated from
these two objects (:func:`markdown_table`; ``tests/test_recipes_table.py`` keeps them equal).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Recipe:
    name: str = field(metadata={"help": "the value of ``EvoLMMConfig.recipe``"})
    sampling_keywords: Literal["explicit", "checkpoint"] = field(metadata={
        "help": "what ``generate`` is given besides T and top-p: explicit = no top-k, no repetition penalty, "
                "whatever the checkpoint's generation_config says; checkpoint = nothing else, so the "
                "checkpoint's settings apply (Instruct: top_k 1)", "row": 1})
    suppress_vision_tokens: bool = field(metadata={
        "help": "vision placeholder tokens may not be sampled", "row": 5})
    stop_at_end_of_turn: bool = field(metadata={
        "help": "generation stops at the end-of-turn token as well as the tokenizer's eos, and each answer is decoded up "
                "to it (else the whole generated row is decoded, as VLMCore.generate does)", "row": 5})
    update_batch: Literal["sampled_ids", "retokenized_text"] = field(metadata={
        "help": "what the update trains on: the sampled token ids teacher-forced with the image, or prompt + "
                "decoded completion re-tokenised, with no pixel values", "row": 2})
    reference: Literal["frozen_base", "solver_adapter"] = field(metadata={
        "help": "π_ref of the KL term: the frozen base (adapters off), or the active Solver adapter in train "
                "mode (the official disable_adapter() call disables nothing)", "row": 3})
    proposer_trained: bool = field(metadata={
        "help": "the Proposer's AdamW steps (officially its LoRA never receives a gradient; its loss, β and b "
                "are still computed)", "row": 4})
    update_loops: tuple[str, ...] = field(metadata={
        "help": "``update_mode`` values it runs, the first being what ``auto`` resolves to: batched = one update "
                "over the N answers, sequential = one AdamW step per answer", "row": 5})
    grad_clip: Literal["global", "per_device"] = field(metadata={
        "help": "gradient clipping to ``grad_clip``: one global norm, or each device's parameters apart", "row": 5})
    lora_targets: Literal["language_model", "name_suffix"] = field(metadata={
        "help": "the seven projections of the language model only, or every module whose name ends in one "
                "of them (the vision MLPs too)", "row": 5})
    seeding: Literal["torch", "transformers_set_seed"] = field(metadata={
        "help": "before loading: torch.manual_seed, or transformers.set_seed + random.seed as the official "
                "trainer does (with the Solver adapter created first)", "row": 5})
    image_scan: Literal["recursive", "official"] = field(metadata={
        "help": "the image pool: every image below the folder, or the official ImagePool's listing (first-level "
                "subfolders, path strings sorted, random.Random(seed) shuffle)", "row": 5})
    backends: tuple[str, ...] = field(metadata={
        "help": "model backends it runs on (the official script is transformers + peft)"})
    updates: tuple[str, ...] = field(metadata={
        "help": "``update`` values it accepts (the official shared backbone trains LoRA adapters)"})
    max_images_per_step: int | None = field(metadata={
        "help": "largest ``images_per_step`` (None: no limit; the official loop takes one image per step)"})

    def __post_init__(self):
        # the kit implements the two pairings the recipes use: the official NLL and KL are one computation
        if (self.update_batch == "retokenized_text") != (self.reference == "solver_adapter"):
            raise ValueError(f"{self.name}: update_batch={self.update_batch!r} needs the matching reference")


PAPER = Recipe(
    name="paper", sampling_keywords="explicit", suppress_vision_tokens=True, stop_at_end_of_turn=True,
    update_batch="sampled_ids", reference="frozen_base", proposer_trained=True, update_loops=("batched", "sequential"),
    grad_clip="global", lora_targets="language_model", seeding="torch", image_scan="recursive",
    backends=("auto", "transformers", "unsloth"), updates=("lora", "qlora", "full"), max_images_per_step=None)

OFFICIAL = Recipe(
    name="official", sampling_keywords="checkpoint", suppress_vision_tokens=False, stop_at_end_of_turn=False,
    update_batch="retokenized_text", reference="solver_adapter", proposer_trained=False, update_loops=("sequential",),
    grad_clip="per_device", lora_targets="name_suffix", seeding="transformers_set_seed", image_scan="official",
    backends=("auto", "transformers"), updates=("lora", "qlora"), max_images_per_step=1)

RECIPES: dict[str, Recipe] = {r.name: r for r in (PAPER, OFFICIAL)}


def recipe_of(config) -> Recipe:
    """The :class:`Recipe` a config (or a recipe name) asks for."""
    return RECIPES[config if isinstance(config, str) else config.recipe]


def markdown_table() -> str:
    """The switch table of ``papers/evolmm.md``: one line per field, PAPER's and OFFICIAL's values side by side."""
    def show(v) -> str:
        return "none" if v is None else ", ".join(v) if isinstance(v, tuple) else str(v).lower()

    lines = ["| `Recipe` field | `PAPER` | `OFFICIAL` | row above | what it decides |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(Recipe)[1:]:
        row = f.metadata.get("row", "—")
        lines.append(f"| `{f.name}` | {show(getattr(PAPER, f.name))} | {show(getattr(OFFICIAL, f.name))} | {row} | "
                     f"{f.metadata['help']} |")
    return "\n".join(lines) + "\n"
