"""The study's arms: what each one changes in the kit's self-evolution, one registry entry each.

* ``continuous`` — EvoLMM: learned Proposer, Solver rewarded by p(a)^γ (paper Eq. 3).
* ``discrete``   — the same with the majority reward (paper Tab. 1 ablation).
* ``oracle``     — no Proposer: each pool image is asked the question the world's generator built it
  for (the test's question distribution; the answer is never used). It isolates the Solver's mechanism.
* ``official``   — the official script's recipe (``recipe="official"``: LoRA adapters, per-sample steps,
  the update on the re-tokenised text without the image, the active adapter as KL reference, the
  Proposer never updated); lr chosen on validation for LoRA.
* ``none``       — no self-evolution: the warm start itself.

A new arm is one :class:`Arm` entry with its config overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ..questions import DrawnQuestion
from ..rollout import Generation, Proposal
from ..trainer import EvoLMMTrainer
from .world import World, pool_index


OFFICIAL_LORA_LR = 2e-5
"""The ``official`` arm's LoRA learning rate, chosen on validation (README: 1e-3 and 1e-4 wreck the Solver);
the official train.sh runs 1e-6 for 16k steps of a 7B model."""


@dataclass(frozen=True)
class Arm:
    name: str
    trained: bool = True
    """False: the warm start is scored as it is (no self-evolution)."""
    questions: str = "proposer"
    """proposer: the learned Proposer asks; world: the generator's question for each pool image."""
    rl: dict = field(default_factory=dict)
    """Config overrides on top of the study's ``rl`` (the reward, or a whole recipe)."""
    help: str = ""


ARM_LIST = (
    Arm("continuous", rl={"reward": "continuous"}, help="EvoLMM: learned Proposer, continuous reward"),
    Arm("discrete", rl={"reward": "discrete"}, help="learned Proposer, majority reward"),
    Arm("oracle", questions="world", rl={"reward": "continuous"},
        help="the world's question for each pool image (answers unused), continuous reward"),
    Arm("official", rl={"recipe": "official", "update": "lora", "lr": OFFICIAL_LORA_LR},
        help="the official script's recipe (LoRA, per-sample steps, no image in the update, Proposer frozen)"),
    Arm("none", trained=False, help="no self-evolution: the warm start"),
)
ARMS = {a.name: a for a in ARM_LIST}


@dataclass
class WorldQuestions:
    """A question source (:mod:`evolmm_lib.questions`) that asks each pool image the world generator's question.

    Nothing is generated, so the trainer never updates the Proposer."""

    world: World
    generated: bool = False

    def next(self, step: int, draw_image) -> DrawnQuestion:
        image, path = draw_image()
        question = self.world.pool_questions[pool_index(path)]
        nothing = Generation([question], [[]], {})  # the Proposer generated nothing
        return DrawnQuestion(image, path, Proposal(question, question), nothing, 0)

    def state(self) -> None:
        return None

    def load_state(self, state, device) -> None:
        pass


def arm_config(arm: Arm, rl: dict, steps: int) -> dict:
    """The trainer overrides of ``arm``: the study's shared ``rl``, then the arm's own, then the study's
    ``<arm>.<key>`` entries for this arm (e.g. ``official.lr``)."""
    shared = {k: v for k, v in rl.items() if "." not in k}
    own = {k.split(".", 1)[1]: v for k, v in rl.items() if k.startswith(arm.name + ".")}
    return {**shared, **arm.rl, **own}


def make_trainer(arm: Arm, backbone, config, pool, run_dir, world: World) -> EvoLMMTrainer:
    questions = WorldQuestions(world) if arm.questions == "world" else None
    return EvoLMMTrainer(backbone, config, pool=pool, output_dir=str(run_dir), questions=questions)
