"""lmms-eval model ``evolmm``: run the official harness on the kit's backbone and checkpoints (GPU).

Install the extra (``pip install -e '.[eval]'``, lmms-eval 0.7.3); the package's entry point
(group ``lmms_eval.models``) registers the model, then::

    python -m lmms_eval --model evolmm \\
        --model_args pretrained=qwen2.5-vl-7b,adapter=runs/train/checkpoint-1000 \\
        --tasks chartqa,mathvista_testmini_format,mathvision_testmini,mathverse_testmini,ai2d --batch_size 8

Every name there is an lmms-eval *task*. ``mathvista_testmini`` is a *group* (``_cot``, ``_solution`` and
``_format``, three prompts over the same 1000 items, each scored on its own); ``mathvista_testmini_format``,
the one that asks for the bare answer, is the kit's MathVista task (``tasks.TASKS["mathvista"]``).

``adapter`` is a checkpoint with ``solver/`` and ``proposer/`` (omit it for the base model): LoRA, QLoRA (its
base then loads in 4 bits) or full, as its trainer state says; ``load_in_4bit=True`` asks for a 4-bit base.
Responses are post-processed as the EvoLMM wrapper does (:func:`~.extraction.postprocess_response`), then
scored by the installed lmms-eval's own task code: its rules (0.7.3, not the vendored 0.5 ones the kit's
runner applies by default), its filters, and a GPT judge where the task calls one (MathVista, MathVerse).
Decoding is greedy; the budget is the task YAML's ``generation_kwargs.max_new_tokens`` (16 for ChartQA and AI2D,
16384 for the math tasks) unless ``max_new_tokens`` is given; the YAML's other generation settings are not used.
"""

from __future__ import annotations

try:
    from lmms_eval.api.model import lmms as _Base
except ImportError:  # lmms-eval not installed: the class still imports, the harness just cannot use it
    _Base = object

from ..prompts import SYSTEM_PROMPT

MODEL_ID = "evolmm"


def manifest():
    """Entry-point payload: the ``ModelManifest`` lmms-eval's registry loads."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.EvoLMM")


class EvoLMM(_Base):
    """Greedy, batched generation with the Solver adapter (or the base model), EvoLMM post-processing."""

    def __init__(self, pretrained: str = "tiny", adapter: str | None = None, role: str = "solver",
                 batch_size: int | str = 1, max_new_tokens: int | None = None,
                 system_prompt: str = SYSTEM_PROMPT, load_in_4bit: bool | str = False, **kwargs) -> None:
        if _Base is not object:
            super().__init__()
        from ..backbone import load_backbone
        from ..config import EvoLMMConfig

        four_bit = str(load_in_4bit).strip().lower() in ("1", "true", "yes")  # model_args may pass a string
        self.backbone = load_backbone(pretrained, config=EvoLMMConfig(load_in_4bit=four_bit), adapters_from=adapter or None)
        self.role_name = None if str(role).lower() in ("base", "none") or not adapter else "solver"
        self.batch_size_per_gpu = int(batch_size)
        self.max_new_tokens = int(max_new_tokens) if max_new_tokens else None
        self.system_prompt = system_prompt

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    def generate_until(self, requests) -> list[str]:
        from ..rollout import generate
        from .extraction import postprocess_response

        out: list[str] = []
        for i in range(0, len(requests), self.batch_size):  # one batched generate per chunk
            chunk = [r.args for r in requests[i:i + self.batch_size]]
            images = [doc_to_visual(self.task_dict[task][split][doc_id])[0]
                      for _, _, doc_to_visual, doc_id, task, split in chunk]
            prompts = [context.replace("<image>", "") for context, *_ in chunk]
            budget = self.max_new_tokens or max(int(kw.get("max_new_tokens", 128)) for _, kw, *_ in chunk)
            gen = generate(self.backbone, self.role_name, images, prompts, max_new_tokens=budget,
                           do_sample=False, system=self.system_prompt)
            out += [postprocess_response(t) for t in gen.texts]
        return out

    def loglikelihood(self, requests):
        raise NotImplementedError("evolmm: only generate_until tasks are supported")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("evolmm: only generate_until tasks are supported")
