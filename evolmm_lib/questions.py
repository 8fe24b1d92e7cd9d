"""Where each step's questions come from (paper §3.1 step 1): the Proposer, or a fixed source.

A question source hands the trainer one :class:`DrawnQuestion` per image, drawing the image with the
function the trainer gives it (each rank keeps its own share of the pool). :class:`ProposerQuestions`
is the paper's: the Proposer adapter asks about each image. A source whose questions were not
generated (``generated = False``, e.g. the miniature study's oracle arm) leaves the Proposer untrained,
since there is no Proposer output to update on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from .images import load_image
from .rollout import Generation, Proposal, propose_questions

DrawImage = Callable[[], tuple]
"""Returns this rank's next ``(image, path)`` from the pool."""


@dataclass
class DrawnQuestion:
    """One image of the step and the question asked about it."""

    image: object
    path: Path
    proposal: Proposal
    generation: Generation
    """The Proposer generate the question came from (several questions may share one)."""
    row: int
    """The question's row in ``generation``."""


class QuestionSource(Protocol):
    generated: bool
    """True when the questions come from the Proposer's own generate (then the Proposer is updated on them)."""

    def next(self, step: int, draw_image: DrawImage) -> DrawnQuestion: ...

    def state(self) -> dict | None: ...

    def load_state(self, state: dict | None, device) -> None: ...


@dataclass
class QueuedQuestions:
    """Questions drawn ahead in one Proposer generate, handed out in order."""

    paths: list[str]
    proposals: list[Proposal]
    generation: Generation
    next: int = 0

    def to_state(self) -> dict:
        """Plain data for a checkpoint (the images are read back from their paths)."""
        return {"paths": list(self.paths), "proposals": [[p.raw, p.question] for p in self.proposals],
                "gen": self.generation.to_state(), "next": int(self.next)}

    @classmethod
    def from_state(cls, state: dict, device) -> "QueuedQuestions":
        return cls(list(state["paths"]), [Proposal(raw, q) for raw, q in state["proposals"]],
                   Generation.from_state(state["gen"], [load_image(p) for p in state["paths"]], device),
                   int(state["next"]))


@dataclass
class ProposerQuestions:
    """The Proposer asks one question per image.

    Sequential loop (official): one Proposer generate per image. Batched: the Proposer adapter only
    changes every k = ``proposer_update_freq`` steps, so the questions of the B images of each step up to
    and including the step of its next update are drawn in ONE generate from the same adapter (the same
    distribution, one call instead of k).
    """

    backbone: object
    config: object
    queue: QueuedQuestions | None = field(default=None)
    generated: bool = True

    def next(self, step: int, draw_image: DrawImage) -> DrawnQuestion:
        if self.config.update_loop == "sequential":
            image, path = draw_image()
            (proposal,), gen = propose_questions(self.backbone, [image], self.config)
            return DrawnQuestion(image, path, proposal, gen, 0)
        if self.queue is None or self.queue.next >= len(self.queue.paths):
            k = self.config.proposer_update_freq
            steps_left = -(-step // k) * k - step + 1  # this step up to and including the next update's
            taken = [draw_image() for _ in range(steps_left * self.config.images_per_step)]
            proposals, gen = propose_questions(self.backbone, [im for im, _ in taken], self.config)
            self.queue = QueuedQuestions([str(p) for _, p in taken], proposals, gen)
        q, j = self.queue, self.queue.next
        q.next += 1
        return DrawnQuestion(q.generation.images[j], Path(q.paths[j]), q.proposals[j], q.generation, j)

    def state(self) -> dict | None:
        return None if self.queue is None else self.queue.to_state()

    def load_state(self, state: dict | None, device) -> None:
        self.queue = None if state is None else QueuedQuestions.from_state(state, device)
