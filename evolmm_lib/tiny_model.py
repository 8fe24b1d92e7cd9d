"""The embedded default backbone: a tiny, randomly initialised Qwen2.5-VL built offline.

Same model class (``Qwen2_5_VLForConditionalGeneration``), image processor, processor and chat
template as the hub checkpoints, a byte-level BPE tokenizer trained here with ``tokenizers`` on a
corpus that covers the kit's prompts, and a seeded initialisation: two builds with the same spec
are bit-identical. The result is an ordinary ``save_pretrained`` folder, loaded by
:func:`evolmm_lib.backbone.load_backbone` exactly like a hub id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .cache import build_once, default_cache_dir, save_model_folder
from .prompts import SYSTEM_PROMPT

# Qwen2.5-VL's special tokens, in the checkpoint's order.
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)

# The chat template of Qwen2.5-VL-Instruct (default system turn, vision placeholders).
QWEN25_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class TinySpec:
    """Sizes of a tiny Qwen2.5-VL. Defaults: ~1M parameters, seconds to build, fast on 2 CPU cores."""

    vocab_size: int = 2048
    text_hidden: int = 128
    text_layers: int = 2
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate: int = 256
    vision_hidden: int = 64
    vision_depth: int = 2
    vision_heads: int = 2
    vision_intermediate: int = 128
    min_pixels: int = 56 * 56
    max_pixels: int = 224 * 224
    seed: int = 0

    def key(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True) + BUILDER_VERSION
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


BUILDER_VERSION = "1"


def _corpus() -> list[str]:
    """Text the tokenizer is trained on: the kit's prompts and the words of its demos and benchmarks."""
    from .prompts import PROPOSER_PROMPT, build_solver_prompt

    colours = "red green blue yellow orange purple black white gray brown pink cyan".split()
    shapes = "square circle triangle bar line point dot star cell grid chart plot axis label legend".split()
    words = (
        "what which how many much is are the of in on at to a an and or than more less most least "
        "largest smallest highest lowest value values total sum difference ratio percent percentage "
        "number count year years image figure diagram table shown show shows there left right top bottom "
        "answer question rationale solve problem step final option options choice choices letter "
        "directly single word phrase please put your one boxed hint float integer decimal place "
        "area angle length width height triangle circle radius degree degrees color colour shape "
        "between first second third last average mean median maximum minimum increase decrease"
    ).split()
    lines = [PROPOSER_PROMPT, build_solver_prompt("How many red squares are there?"), "system user assistant"]
    lines += [SYSTEM_PROMPT, "Answer the question with a single word.",
              'Please solve the problem step by step and put your answer in one "\\boxed{}".',
              "Answer the question with the option's letter from the given choices directly.",
              "Answer with the option's letter from the given choices directly.",
              "Hint: Please answer the question and provide the final answer at the end.",
              "Choices: A. B. C. D. E.", "The answer is"]
    for c in colours:
        for s in shapes:
            lines.append(f"<question>How many {c} {s}s are in the image?</question>"
                         f"<rationale>Count the {c} {s}s.</rationale> <answer>{len(c) % 7}</answer>")
    lines.append(" ".join(words))
    lines += [" ".join(str(i) for i in range(0, 101)), "0.5 1.5 2.25 10% 25% 50% 100% $ € ( ) [ ] { } = + - * / ^ ."]
    return lines


def _train_tokenizer(spec: TinySpec):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tok = Qwen2Tokenizer(
        vocab=state["vocab"], merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token=None, model_max_length=32768,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in ("<|endoftext|>", "<|im_end|>")],
    )
    tok.chat_template = QWEN25_VL_CHAT_TEMPLATE
    return tok


def build_tiny_qwen25_vl(output_dir: str | os.PathLike, spec: TinySpec = TinySpec()) -> Path:
    """Build the tiny backbone into ``output_dir`` (model, processor, tokenizer, chat template)."""
    import torch
    from transformers import (GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                              Qwen2_5_VLProcessor, Qwen2VLImageProcessor)
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    output_dir = Path(output_dir)
    tok = _train_tokenizer(spec)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = spec.text_hidden // spec.text_heads
    half = head_dim // 2
    mrope = [half // 4, (half - half // 4) // 2, half - half // 4 - (half - half // 4) // 2]
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tok), hidden_size=spec.text_hidden, intermediate_size=spec.text_intermediate,
            num_hidden_layers=spec.text_layers, num_attention_heads=spec.text_heads,
            num_key_value_heads=spec.text_kv_heads, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "mrope_section": mrope, "rope_theta": 1000000.0},
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
            tie_word_embeddings=False,
        ),
        vision_config=dict(
            depth=spec.vision_depth, hidden_size=spec.vision_hidden, intermediate_size=spec.vision_intermediate,
            num_heads=spec.vision_heads, out_hidden_size=spec.text_hidden, window_size=112,
            fullatt_block_indexes=[spec.vision_depth - 1],
        ),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(spec.seed)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"], do_sample=True, temperature=1.0, top_p=1.0,
    )
    image_processor = Qwen2VLImageProcessor(min_pixels=spec.min_pixels, max_pixels=spec.max_pixels)
    video_processor = Qwen2VLVideoProcessor(min_pixels=spec.min_pixels, max_pixels=spec.max_pixels)
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tok,
                                    video_processor=video_processor, chat_template=QWEN25_VL_CHAT_TEMPLATE)

    return save_model_folder(output_dir, model, processor, "evolmm_tiny.json",
                             {**dataclasses.asdict(spec), "key": spec.key()})


def ensure_tiny_model(spec: TinySpec = TinySpec(), cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the tiny backbone for ``spec``, building it into the cache on first use."""
    path = Path(cache_dir or default_cache_dir()) / f"tiny-qwen2.5-vl-{spec.key()}"
    return build_once(path, "evolmm_tiny.json", lambda: build_tiny_qwen25_vl(path, spec))


def add_arguments(p) -> None:
    p.add_argument("--output-dir", default=None, help="folder to build into (default: the cache)")


def main(args) -> int:
    path = build_tiny_qwen25_vl(args.output_dir) if args.output_dir else ensure_tiny_model()
    print(path)
    return 0
