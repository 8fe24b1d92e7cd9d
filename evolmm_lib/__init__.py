"""evolmm_lib: the library behind the EvoLMM reproducibility kit (arXiv 2511.16672).

Each paper concept has one home: ``config`` (hyperparameters), ``backbone`` (model + two LoRA roles),
``prompts`` (role prompts and parsers), ``rollout`` (batched generation), ``rewards`` (plain reward
functions), ``logprobs`` (teacher-forced log-probs and KL), ``images`` (image loading and pool).
"""

__version__ = "0.1.0"

from .config import ConfigError, EvoLMMConfig  # noqa: E402,F401


def _quiet_optional_imports() -> None:
    """Two warnings printed whenever peft imports the GPU extra's torchao and bitsandbytes on a CPU
    (an Enum deprecation inside torchao; bitsandbytes' 4-bit CPU kernel, which the kit never uses)."""
    import logging

    for name in ("torch.utils._pytree", "bitsandbytes.backends.cpu.ops"):
        logging.getLogger(name).setLevel(logging.ERROR)


_quiet_optional_imports()
