"""EvoLMM rewards as TRL GRPO reward functions (TRL's ``reward_func(prompts, completions, **kw) -> list[float]``).

TRL's ``GRPOTrainer`` scores a flat list holding ``num_generations`` consecutive completions per
prompt; each run of ``num_generations`` is one group = the N Solver answers to one (image, question).
"""

from __future__ import annotations

from typing import Callable

from .config import EvoLMMConfig
from .rewards import config_settings, score_completions


def completion_text(completion) -> str:
    """A TRL completion as text: a string, or a conversational list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        parts = []
        for m in completion:
            content = m.get("content", "") if isinstance(m, dict) else m
            if isinstance(content, list):
                content = "".join(c.get("text", "") for c in content if isinstance(c, dict))
            parts.append(str(content))
        return "".join(parts)
    raise TypeError(f"unexpected completion type {type(completion).__name__}")


def _groups(completions: list, num_generations: int) -> list[list[str]]:
    if len(completions) % num_generations:
        raise ValueError(f"{len(completions)} completions is not a multiple of num_generations={num_generations}")
    texts = [completion_text(c) for c in completions]
    return [texts[i: i + num_generations] for i in range(0, len(texts), num_generations)]


def make_solver_reward(num_generations: int, config: EvoLMMConfig | None = None,
                       discrete: bool = False) -> Callable[..., list[float]]:
    """Solver reward per completion: continuous p(a)^γ·(1 − λ_len·pen) (Eq. 3) or the discrete ablation."""
    cfg = config or EvoLMMConfig()

    def evolmm_solver_reward(completions, prompts=None, **kwargs) -> list[float]:
        out: list[float] = []
        for group in _groups(completions, num_generations):
            out += score_completions(group, **config_settings(cfg)).solver_rewards("discrete" if discrete else "continuous")
        return out

    evolmm_solver_reward.__name__ = "evolmm_solver_discrete" if discrete else "evolmm_solver_continuous"
    return evolmm_solver_reward


def make_proposer_reward(num_generations: int, config: EvoLMMConfig | None = None) -> Callable[..., list[float]]:
    """The Proposer's band-pass reward exp(−(H−μ_H)²/2σ_H²) of each group's answer entropy (Eq. 4),
    given to every completion of the group (it scores the question the group answered)."""
    cfg = config or EvoLMMConfig()

    def evolmm_proposer_reward(completions, prompts=None, **kwargs) -> list[float]:
        out: list[float] = []
        for group in _groups(completions, num_generations):
            out += [score_completions(group, **config_settings(cfg)).proposer_reward] * len(group)
        return out

    return evolmm_proposer_reward
