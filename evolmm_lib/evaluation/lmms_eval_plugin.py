"""lmms-eval model ``evolmm``: run the official harness on the kit's backbone and adapters (GPU).

Install the extra (``pip install -e '.[eval]'``, lmms-eval 0.7.3); the package's entry point
(group ``lmms_eval.models``) registers the model, then::

    python -m lmms_eval --model evolmm \\
        --model_args pretrained=qwen2.5-vl-7b,adapter=runs/train/checkpoint-1000 \\
        --tasks chartqa,mathvista_testmini_format,mathvision_testmini,mathverse_testmini,ai2d --batch_size 8

``adapter`` is a checkpoint with ``solver/`` and ``proposer/`` folders (omit it for the base model);
responses are post-processed as the EvoLMM wrapper does before lmms-eval scores them.
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
                 system_prompt: str = SYSTEM_PROMPT, **kwargs) -> None:
        if _Base is not object:
            super().__init__()
        from ..backbone import load_backbone

        self.backbone = load_backbone(pretrained, adapters_from=adapter or None)
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
