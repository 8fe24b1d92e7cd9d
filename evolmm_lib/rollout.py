"""Batched generation for both roles (paper §3.1 steps 1–2).

``propose_questions`` asks the Proposer one question per image, all images in one ``generate``;
``sample_answers`` draws the Solver's N answers for one (image, question) in ONE ``generate`` call
(the processor repeats the image's ``pixel_values`` and ``image_grid_thw`` N times);
``sample_answer_groups`` does the same for B (image, question) pairs, B×N rows in one call.
Every :class:`Generation` keeps the processor inputs and the generated token ids, so the policy
update can teacher-force exactly the sampled tokens without re-tokenising text.

Sampling settings per recipe (:func:`sampling_kwargs`): ``paper`` states every filter itself (T, top-p,
no top-k, no repetition penalty, vision placeholders suppressed) whatever the checkpoint's
``generation_config.json`` says; ``official`` passes only ``do_sample``, T and top-p, as the official
script does, so top-k, repetition penalty etc. come from the checkpoint (Qwen2.5-VL-Instruct: top_k 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch
from PIL import Image

from .config import EvoLMMConfig
from .prompts import build_proposer_prompt, build_solver_prompt, chat_messages, parse_answer, parse_question
from .recipes import recipe_of
from .rewards import normalize_answer, pre_answer_word_count

if TYPE_CHECKING:  # annotations only: backbone imports logprobs, which imports rollout
    from .backbone import Backbone

VISION_SPECIAL_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")


@dataclass
class Generation:
    """Texts sampled for a batch of (image, prompt) pairs, with what is needed to score them again."""

    texts: list[str]
    completion_ids: list[list[int]]
    """Generated ids up to and including the first end-of-turn token."""
    prompt_inputs: dict[str, torch.Tensor]
    """Processor output for the prompts (left-padded), one row per text."""
    prompts: list[str] = field(default_factory=list)
    images: list = field(default_factory=list)
    """The PIL image of each row (the official update re-tokenises prompt + completion text with it)."""

    def __len__(self) -> int:
        return len(self.texts)

    def to_state(self) -> dict:
        """Plain data for a checkpoint (loadable with ``torch.load(weights_only=True)``); images left out."""
        return {"texts": list(self.texts), "completion_ids": [[int(t) for t in c] for c in self.completion_ids],
                "prompt_inputs": {k: v.detach().cpu() for k, v in self.prompt_inputs.items()},
                "prompts": list(self.prompts)}

    @classmethod
    def from_state(cls, state: dict, images: list, device: torch.device | str = "cpu") -> "Generation":
        """The inverse of :meth:`to_state`, with the rows' ``images`` given back."""
        return cls(list(state["texts"]), [list(c) for c in state["completion_ids"]],
                   {k: v.to(device) for k, v in state["prompt_inputs"].items()}, list(state["prompts"]), list(images))


def render_prompt(backbone: Backbone, prompt: str, system: str | None = None) -> str:
    """The chat text for one image + ``prompt`` user turn, ending with the assistant header."""
    messages = chat_messages(prompt)
    if system is not None:
        messages = [{"role": "system", "content": [{"type": "text", "text": system}]}] + messages
    return backbone.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_prompts(backbone: Backbone, images: Sequence[Image.Image], prompts: Sequence[str],
                   system: str | None = None) -> dict[str, torch.Tensor]:
    """Processor inputs for (image_i, prompt_i) pairs, left-padded, on the model's device."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images for {len(prompts)} prompts")
    backbone.tokenizer.padding_side = "left"
    texts = [render_prompt(backbone, p, system) for p in prompts]
    batch = backbone.processor(text=texts, images=list(images), padding=True, return_tensors="pt")
    return {k: v.to(backbone.device) for k, v in batch.items()}


def end_token_ids(backbone: Backbone) -> list[int]:
    """Token ids that end a turn (generation config's EOS ids, plus the tokenizer's)."""
    eos = backbone.model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
    if backbone.tokenizer.eos_token_id is not None:
        ids.add(backbone.tokenizer.eos_token_id)
    return sorted(ids)


def suppressed_token_ids(backbone: Backbone) -> list[int]:
    """Vision placeholder tokens the sampler must never emit (they would corrupt mrope positions)."""
    tok = backbone.tokenizer
    ids = [tok.convert_tokens_to_ids(t) for t in VISION_SPECIAL_TOKENS]
    return [i for i in ids if isinstance(i, int) and i >= 0 and i != tok.unk_token_id]


PAPER_FILTERS = {"top_k": None, "min_p": None, "typical_p": 1.0, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0}
"""What the paper recipe sets explicitly besides T and top-p: no other filter, whatever the checkpoint ships."""

REPORTED_SETTINGS = ("do_sample", "temperature", "top_p", "top_k", "min_p", "typical_p", "repetition_penalty",
                     "no_repeat_ngram_size")


def sampling_kwargs(backbone: Backbone, recipe: str, temperature: float, top_p: float) -> dict:
    """The sampling keywords ``generate`` receives under ``recipe`` (a name; see the module docstring)."""
    r = recipe_of(recipe)
    out = dict(do_sample=True, temperature=temperature, top_p=top_p)
    if r.sampling_keywords == "checkpoint":  # official VLMCore.generate: these three and the pad id, nothing else
        out["pad_token_id"] = backbone.tokenizer.eos_token_id
    else:
        out.update(PAPER_FILTERS, pad_token_id=backbone.tokenizer.pad_token_id)
    if r.suppress_vision_tokens:
        out["suppress_tokens"] = suppressed_token_ids(backbone)
    return out


def effective_generation_settings(backbone: Backbone, config: EvoLMMConfig) -> dict:
    """The sampling settings ``generate`` really uses: the checkpoint's generation_config merged with
    :func:`sampling_kwargs` (transformers' own merge), as logged at the start of a run."""
    kwargs = sampling_kwargs(backbone, config.recipe, config.temperature, config.top_p)
    merged, _ = backbone.model._prepare_generation_config(None, **kwargs)  # the merge generate() itself does
    out = {k: getattr(merged, k, None) for k in REPORTED_SETTINGS}
    out["suppress_vision_tokens"] = bool(kwargs.get("suppress_tokens"))
    return out


@torch.no_grad()
def generate(
    backbone: Backbone,
    role: str | None,
    images: Sequence[Image.Image],
    prompts: Sequence[str],
    *,
    num_samples: int = 1,
    max_new_tokens: int = 128,
    temperature: float = 1.0,
    top_p: float = 1.0,
    do_sample: bool = True,
    system: str | None = None,
    output_logits: bool = False,
    recipe: str = "paper",
) -> Generation:
    """Sample ``num_samples`` completions per (image, prompt) with ``role``, in one ``generate`` call.

    Rows are grouped by prompt: row ``i * num_samples + j`` is sample j of prompt i. ``recipe`` picks
    the sampling keywords (:func:`sampling_kwargs`); ``do_sample=False`` is greedy (evaluation).
    """
    images = [im for im in images for _ in range(num_samples)]
    prompts = [p for p in prompts for _ in range(num_samples)]
    inputs = encode_prompts(backbone, images, prompts, system)
    ends = end_token_ids(backbone)
    if do_sample:
        sampling = sampling_kwargs(backbone, recipe, temperature, top_p)
    else:  # greedy (evaluation): the checkpoint's other settings (e.g. repetition penalty) apply
        sampling = dict(do_sample=False, top_k=None, pad_token_id=backbone.tokenizer.pad_token_id,
                        suppress_tokens=suppressed_token_ids(backbone))
    stop_at_end_of_turn = recipe_of(recipe).stop_at_end_of_turn
    if stop_at_end_of_turn:
        sampling["eos_token_id"] = ends
    with backbone.role(role) as model:
        was_training = model.training
        model.eval()
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, return_dict_in_generate=True,
                             output_logits=output_logits, **sampling)
        model.train(was_training)
    new = out.sequences[:, inputs["input_ids"].shape[1]:].tolist()
    completion_ids = []
    for row in new:
        cut = next((i + 1 for i, t in enumerate(row) if t in ends), len(row))
        completion_ids.append(row[:cut])
    # else (official) the whole generated row is decoded (special tokens skipped), as VLMCore.generate does
    texts = backbone.tokenizer.batch_decode(completion_ids if stop_at_end_of_turn else new, skip_special_tokens=True)
    gen = Generation([t.strip() for t in texts], completion_ids, inputs, list(prompts), list(images))
    if output_logits:
        gen.logits = torch.stack(out.logits, dim=1)  # type: ignore[attr-defined]
    return gen


@dataclass
class Proposal:
    """One Proposer output and the question parsed from it (official fallbacks)."""

    raw: str
    question: str


def propose_questions(backbone: Backbone, images: Sequence[Image.Image],
                      config: EvoLMMConfig) -> tuple[list[Proposal], Generation]:
    """One Proposer question per image, all images in one batched ``generate`` (T = config.temperature)."""
    prompt = build_proposer_prompt()
    gen = generate(backbone, "proposer", images, [prompt] * len(images), num_samples=1,
                   max_new_tokens=config.max_new_tokens_proposer, temperature=config.temperature,
                   top_p=config.top_p, recipe=config.recipe)
    return [Proposal(t, parse_question(t)) for t in gen.texts], gen


@dataclass
class SolverSamples:
    """The Solver's N answers to one question: raw completions, extracted and normalised answers, and w_i
    (each completion's words before ``<answer>``, for the length penalty), all read once when sampled."""

    question: str
    completions: list[str]
    answers: list[str]
    normalized: list[str]
    words: list[int]
    generation: Generation


def sample_answers(backbone: Backbone, image: Image.Image, question: str, config: EvoLMMConfig,
                   num_samples: int | None = None) -> SolverSamples:
    """N Solver samples for (image, question) in ONE ``generate`` call."""
    return sample_answer_groups(backbone, [image], [question], config, num_samples)[0]


def sample_answer_groups(backbone: Backbone, images: Sequence[Image.Image], questions: Sequence[str],
                         config: EvoLMMConfig, num_samples: int | None = None) -> list[SolverSamples]:
    """N Solver samples for each (image_i, question_i), all B×N in ONE left-padded ``generate`` call.

    Group i holds rows ``i*N … (i+1)*N − 1`` of the one :class:`Generation` every group shares.
    """
    n = num_samples or config.num_solver_samples
    gen = generate(backbone, "solver", images, [build_solver_prompt(q) for q in questions], num_samples=n,
                   max_new_tokens=config.max_new_tokens_solver, temperature=config.temperature,
                   top_p=config.top_p, recipe=config.recipe)
    answers = [parse_answer(t) for t in gen.texts]
    groups = []
    for i, question in enumerate(questions):
        rows = slice(i * n, (i + 1) * n)
        groups.append(SolverSamples(question, gen.texts[rows], answers[rows],
                                    [normalize_answer(a) for a in answers[rows]],
                                    [pre_answer_word_count(t) for t in gen.texts[rows]], gen))
    return groups
