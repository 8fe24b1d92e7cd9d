"""Real-shape dry runs: ``--model random:qwen2.5-vl-7b`` builds the real architecture with random weights.

A user can measure memory and speed on their machine before downloading 15-150 GB of weights. The
shapes below are the ``config.json`` values of the hub checkpoints (kept here as data: the kit runs
offline); ``random:<preset>@L`` keeps L language layers and L vision blocks (the last one with full
attention, as in the real towers), for a quick look at a reduced depth.

What differs from the real checkpoint, and why:
- *Tokenizer and chat template* are the embedded tiny model's (its 929-token BPE, the same Qwen2.5-VL
  special tokens and template): Qwen's 151K-token vocabulary cannot be built offline. The model keeps
  the real ``vocab_size``, so the embedding and LM head have their real sizes; prompts are shorter in
  tokens than with the real tokenizer, and sampled ids the tiny tokenizer lacks decode to nothing.
- *Image processor* has the real settings (patch 14, merge 2, min/max pixels of the hub processor),
  so an image costs as many vision tokens as with the real model.
- *Generation* never stops early: ``min_new_tokens`` is set above any budget, so every completion is
  ``max_new_tokens`` long and timings are an upper bound.
"""

from __future__ import annotations

import logging
import re
import warnings

log = logging.getLogger("evolmm")

PREFIX = "random:"

_VISION = dict(depth=32, hidden_size=1280, num_heads=16, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
               window_size=112, fullatt_block_indexes=[7, 15, 23, 31], hidden_act="silu", tokens_per_second=2,
               in_channels=3)
_TEXT = dict(max_position_embeddings=128000, rms_norm_eps=1e-06, hidden_act="silu",
             rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0})

SHAPES: dict[str, dict] = {
    # Qwen/Qwen2.5-VL-3B-Instruct config.json
    "qwen2.5-vl-3b": dict(text=dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                                    num_attention_heads=16, num_key_value_heads=2),
                          vision=dict(intermediate_size=3420, out_hidden_size=2048), tie_word_embeddings=True),
    # Qwen/Qwen2.5-VL-7B-Instruct config.json
    "qwen2.5-vl-7b": dict(text=dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                    num_attention_heads=28, num_key_value_heads=4),
                          vision=dict(intermediate_size=3420, out_hidden_size=3584), tie_word_embeddings=False),
    # Qwen/Qwen2.5-VL-72B-Instruct config.json (its AWQ copy lists intermediate_size 29696, padded for 4-bit groups)
    "qwen2.5-vl-72b": dict(text=dict(vocab_size=152064, hidden_size=8192, intermediate_size=29568, num_hidden_layers=80,
                                     num_attention_heads=64, num_key_value_heads=8),
                           vision=dict(intermediate_size=3456, out_hidden_size=8192), tie_word_embeddings=False),
}
"""Per-size values; the rest (:data:`_TEXT`, :data:`_VISION`) is shared by the three checkpoints."""

HUB_PROCESSOR_PIXELS = (56 * 56, 28 * 28 * 16384)
"""(min_pixels, max_pixels) of the hub checkpoints' image processor (preprocessor_config.json)."""

FULL_BUDGET = 1 << 30
"""``min_new_tokens`` of a random preset: above any ``max_new_tokens``, so no completion ends early."""

_NAME = re.compile(r"^random:(?P<preset>[\w.\-]+?)(?:@(?P<layers>\d+))?$")


class RandomPresetError(ValueError):
    """A ``random:`` name that does not name a known shape."""


def parse(name: str) -> tuple[str, int | None]:
    """``random:qwen2.5-vl-7b@2`` → ("qwen2.5-vl-7b", 2); the layer count is optional."""
    m = _NAME.match(name)
    if not m or m["preset"] not in SHAPES:
        raise RandomPresetError(f"unknown random preset {name!r}: expected random:<{'|'.join(SHAPES)}>[@LAYERS]")
    layers = int(m["layers"]) if m["layers"] else None
    if layers is not None and layers < 1:
        raise RandomPresetError(f"{name!r}: the layer count after @ must be at least 1")
    return m["preset"], layers


def build_config(name: str, token_ids: dict[str, int]):
    """The ``Qwen2_5_VLConfig`` of ``name`` with the tokenizer's special-token ids."""
    from transformers import Qwen2_5_VLConfig

    preset, layers = parse(name)
    shape = SHAPES[preset]
    text = {**_TEXT, **shape["text"], "bos_token_id": token_ids["<|endoftext|>"],
            "eos_token_id": token_ids["<|im_end|>"], "pad_token_id": token_ids["<|endoftext|>"],
            "tie_word_embeddings": shape["tie_word_embeddings"]}
    vision = {**_VISION, **shape["vision"]}
    if layers is not None:
        text["num_hidden_layers"] = min(layers, text["num_hidden_layers"])
        vision["depth"] = min(layers, vision["depth"])
        vision["fullatt_block_indexes"] = [vision["depth"] - 1]
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, tie_word_embeddings=shape["tie_word_embeddings"],
        image_token_id=token_ids["<|image_pad|>"], video_token_id=token_ids["<|video_pad|>"],
        vision_start_token_id=token_ids["<|vision_start|>"], vision_end_token_id=token_ids["<|vision_end|>"],
    )


def hold_full_budget(generation_config) -> None:
    """Make every completion ``max_new_tokens`` long (no early end of turn): timings become an upper bound."""
    generation_config.min_new_tokens = FULL_BUDGET
    # transformers warns on every generate that min_new_tokens exceeds the budget: that is the intent here
    warnings.filterwarnings("ignore", message="Unfeasible length constraints", category=UserWarning)


def load_random(name: str, dtype, device_map=None, max_image_pixels: int | None = None, seed: int = 0):
    """(model, processor) for ``random:<preset>[@L]``: real shapes, random weights, built on the target device."""
    import torch
    from transformers import AutoProcessor, GenerationConfig, Qwen2_5_VLForConditionalGeneration

    from .tiny_model import SPECIAL_TOKENS, ensure_tiny_model

    min_pixels, max_pixels = HUB_PROCESSOR_PIXELS
    processor = AutoProcessor.from_pretrained(ensure_tiny_model(), min_pixels=min_pixels,
                                              max_pixels=max_image_pixels or max_pixels)
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = build_config(name, ids)
    torch.manual_seed(seed)
    if device_map == "auto":  # larger than one GPU: built empty, then each layer initialised on its own GPU
        model = _build_spread(config, dtype)
        device = "cuda (auto)"
    else:
        device = "cpu" if device_map is None else f"cuda:{device_map['']}"
        with torch.device(device):
            model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"], do_sample=True, temperature=1.0, top_p=1.0,
    )
    hold_full_budget(model.generation_config)
    n = sum(p.numel() for p in model.parameters())
    log.info("%s: real shapes, random weights, %.2fB parameters (%s, %s); tokenizer: the tiny model's", name,
             n / 1e9, str(dtype).replace("torch.", ""), device)
    return model, processor


def _build_spread(config, dtype, max_memory: dict | None = None):
    """The model with its layers spread over the visible GPUs (``device_map="auto"``), random weights
    initialised in place: no device ever holds the whole model. ``max_memory`` as in accelerate (tests)."""
    import torch
    from accelerate import dispatch_model, infer_auto_device_map, init_empty_weights
    from accelerate.utils import set_module_tensor_to_device
    from transformers import Qwen2_5_VLForConditionalGeneration

    with init_empty_weights(include_buffers=False):  # parameters on "meta", buffers (rotary) real
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.tie_weights()
    device_map = infer_auto_device_map(model, max_memory=max_memory, dtype=dtype,
                                       no_split_module_classes=model._no_split_modules)
    for name, param in model.named_parameters():
        owner = max((m for m in device_map if m == "" or name == m or name.startswith(m + ".")), key=len)
        set_module_tensor_to_device(model, name, device_map[owner],
                                    value=torch.empty(param.shape, dtype=dtype, device=device_map[owner]))
    for module in model.modules():  # the model's own initialisation, module by module, where each one lives
        module._is_hf_initialized = False
    model.tie_weights()  # the 3B's head shares the embedding: point it at the materialised one
    model.init_weights()
    model.hf_device_map = device_map
    return dispatch_model(model, device_map)
