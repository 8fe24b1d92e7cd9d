"""Memory of a Qwen2.5-VL backbone from its shapes: parameter counts, weight bytes, per-GPU training state.

Used by :mod:`evolmm_lib.placement` (does a model fit one device?) and by
``python configs/accelerate/memory.py`` (the per-GPU table of the shipped scale-out configs).

Parameter counts are computed from the public Qwen2.5-VL ``config.json`` shapes below (the same
formula, applied to the kit's tiny model, gives its exact parameter count: tests/test_accelerate.py).
Counted: the frozen base (or reference copy), both roles' trainable weights, their gradients and
AdamW's two moments, all in the stored dtype (the kit loads bf16 on GPUs and trains in it; peft keeps LoRA weights in
float32). Not counted: activations, the generation KV cache, CUDA/NCCL workspaces (a few GB).
"""

from __future__ import annotations

from dataclasses import dataclass

GiB = 1024**3


@dataclass(frozen=True)
class Shapes:
    """The fields of a Qwen2.5-VL ``config.json`` that fix its parameter count."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool
    vision_hidden: int = 1280
    vision_intermediate: int = 3420
    vision_depth: int = 32
    patch: int = 14
    temporal_patch: int = 2
    merge: int = 2


PUBLIC = {  # Qwen/Qwen2.5-VL-*-Instruct config.json
    "qwen2.5-vl-3b": Shapes(2048, 11008, 36, 16, 2, 151936, True),
    "qwen2.5-vl-7b": Shapes(3584, 18944, 28, 28, 4, 152064, False),
    "qwen2.5-vl-72b": Shapes(8192, 29568, 80, 64, 8, 152064, False),
}
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def shapes_of(config) -> Shapes:
    """:class:`Shapes` from a transformers ``Qwen2_5_VLConfig``."""
    t, v = config.text_config, config.vision_config
    return Shapes(t.hidden_size, t.intermediate_size, t.num_hidden_layers, t.num_attention_heads,
                  t.num_key_value_heads, t.vocab_size, bool(config.tie_word_embeddings), v.hidden_size,
                  v.intermediate_size, v.depth, v.patch_size, v.temporal_patch_size, v.spatial_merge_size)


def linear_shapes(s: Shapes) -> dict[str, tuple[int, int]]:
    """(in, out) of each adapted projection of one decoder layer."""
    kv = s.hidden // s.heads * s.kv_heads
    return {"q_proj": (s.hidden, s.hidden), "k_proj": (s.hidden, kv), "v_proj": (s.hidden, kv),
            "o_proj": (s.hidden, s.hidden), "gate_proj": (s.hidden, s.intermediate),
            "up_proj": (s.hidden, s.intermediate), "down_proj": (s.intermediate, s.hidden)}


def language_parameters(s: Shapes) -> int:
    """Decoder layers (q/k/v biased), embeddings, final norm, and the head when not tied."""
    lin = linear_shapes(s)
    kv = lin["k_proj"][1]
    layer = sum(i * o for i, o in lin.values()) + s.hidden + 2 * kv + 2 * s.hidden
    return s.layers * layer + s.vocab * s.hidden * (1 if s.tied else 2) + s.hidden


def vision_parameters(s: Shapes) -> int:
    """Patch embedding, blocks (biased qkv/proj/MLP, two RMSNorms), patch merger into the LM width."""
    h, i = s.vision_hidden, s.vision_intermediate
    block = (h * 3 * h + 3 * h) + (h * h + h) + 2 * (h * i + i) + (i * h + h) + 2 * h
    merged = h * s.merge**2
    merger = h + merged * merged + merged + merged * s.hidden + s.hidden
    return 3 * s.temporal_patch * s.patch**2 * h + s.vision_depth * block + merger


def lora_parameters(s: Shapes, r: int, targets=LORA_TARGETS) -> int:
    """One adapter: r·(in + out) per adapted projection per layer."""
    return s.layers * sum(r * (i + o) for name, (i, o) in linear_shapes(s).items() if name in targets)


def per_gpu_gib(s: Shapes, update: str, gpus: int, sharded: bool, r: int = 16, dtype_bytes: int = 2) -> float:
    """Weights + gradients + AdamW moments per GPU (see the module docstring for what is left out)."""
    total = language_parameters(s) + vision_parameters(s)
    if update == "lora":  # one base, two float32 adapters: weight, grad, 2 moments = 16 B per parameter
        return (total * dtype_bytes + 2 * lora_parameters(s, r) * 16) / (gpus if sharded else 1) / GiB
    # full: two role copies whose language model trains (weight, grad, 2 moments), sharded under FSDP,
    # and the frozen reference copy, whole on every GPU
    roles = 2 * total * dtype_bytes + 2 * language_parameters(s) * 3 * dtype_bytes
    return (roles / (gpus if sharded else 1) + total * dtype_bytes) / GiB


def model_parameters(s: Shapes) -> int:
    """All parameters: language model and vision tower."""
    return language_parameters(s) + vision_parameters(s)


def weight_bytes(s: Shapes, dtype_bytes: int = 2, load_4bit: bool = False) -> int:
    """Bytes of the loaded base weights; 4-bit: the decoder's and vision blocks' linear weights at half a byte
    (nf4, plus one fp32 scale per 64 values), embeddings, head and norms in ``dtype_bytes``."""
    total = model_parameters(s)
    if not load_4bit:
        return total * dtype_bytes
    embed = s.vocab * s.hidden * (1 if s.tied else 2)
    quantised = total - embed
    return int(quantised * (0.5 + 4 / 64) + embed * dtype_bytes)


# -- what one training step adds on top of the weights and the optimiser state ------------------------------------
SOLVER_TEXT_TOKENS = 60
"""Text tokens of a Solver prompt around the image (system prompt, question, chat template) with the kit's
tokenizer; Qwen's own tokenizer gives about as many."""


def image_tokens(width: int, height: int, s: Shapes) -> int:
    """Language-model tokens of one image after the processor's resize to multiples of patch × merge."""
    unit = s.patch * s.merge
    return max(1, round(height / unit)) * max(1, round(width / unit))


def step_bytes(s: Shapes, rows: int, new_tokens: int, image_tokens: int, text_tokens: int = SOLVER_TEXT_TOKENS,
               dtype_bytes: int = 2, chunk: int = 64, lora: bool = True, lora_dropout: bool = True) -> dict[str, int]:
    """Bytes of the tensors one training step holds beyond :func:`per_gpu_gib`, at their peaks.

    ``rows`` is the number of sampled completions trained together (B × N for the Solver), each row
    ``text_tokens + image_tokens + new_tokens`` positions long. The two phases never overlap, so a step's
    peak is the larger of the two (:func:`training_step_gib`):

    - ``generation``: the KV cache of ``generate`` (rows × positions × layers × keys and values of the
      kv width, in the model's dtype) and the last position's float32 logits.
    - ``update``: what the teacher-forced forward with gradients keeps for the backward pass, per position
      and decoder layer about 8·hidden + 2·kv + 4·intermediate values in the model's dtype (norm inputs and
      outputs, q/k/v, attention output, the MLP's gate, up, activation and product); under LoRA also the
      input of each of the 7 adapted projections in float32, because peft runs the adapters in float32
      (6·hidden + intermediate values, plus their one-byte dropout masks); and one chunk of
      full-vocabulary float32 logits (rows × min(chunk, new_tokens) × vocab) for the policy and the
      reference, about 4 copies (logits, log-softmax, the reference's, the KL's softmax).

    Not counted: the vision tower's transient activations (it is frozen and runs once per row), CUDA
    workspaces and the allocator's fragmentation, and on a CPU the process itself (libraries, tokenizer).
    """
    positions = rows * (text_tokens + image_tokens + new_tokens)
    kv = s.hidden // s.heads * s.kv_heads
    kv_cache = positions * s.layers * 2 * kv * dtype_bytes
    last_logits = rows * s.vocab * 4
    per_layer = (8 * s.hidden + 2 * kv + 4 * s.intermediate) * dtype_bytes
    if lora:
        per_layer += (6 * s.hidden + s.intermediate) * (4 + (1 if lora_dropout else 0))
    activations = positions * s.layers * per_layer
    logits = 4 * rows * min(chunk, new_tokens) * s.vocab * 4
    return {"generation": kv_cache + last_logits, "update": activations + logits}


def training_step_gib(s: Shapes, update: str, rows: int, new_tokens: int, image_tokens: int,
                      text_tokens: int = SOLVER_TEXT_TOKENS, r: int = 16, dtype_bytes: int = 2,
                      chunk: int = 64) -> float:
    """Peak memory of one training step on one device: :func:`per_gpu_gib` (weights, gradients, AdamW)
    plus the larger phase of :func:`step_bytes`."""
    extra = step_bytes(s, rows, new_tokens, image_tokens, text_tokens, dtype_bytes, chunk, lora=update != "full")
    return per_gpu_gib(s, update, 1, False, r, dtype_bytes) + max(extra.values()) / GiB
