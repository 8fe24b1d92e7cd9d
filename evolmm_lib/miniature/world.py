"""A seeded miniature visual world with exact ground truth, for the CPU reproduction.

A 112×112 image is a 4×4 grid of 28-px cells (one merged Qwen2.5-VL image token per cell) holding
1–6 coloured squares and circles. Questions count objects, optionally filtered by colour and/or
shape; answers 0–6 are drawn before the scene is built (0 only under a filter), so they are near-balanced:
the most frequent answer is 16.6% of the 500-item test.

Two answer formats ("variants"): ``direct`` (``<answer>3</answer>``) and ``reasoning``, where the
Solver first reads the matching objects in reading order (``red square, red circle``) and then
answers — a short chain where the majority over answers can beat the single most likely sequence.

Splits: labelled ``warmstart``, ``validation`` and ``test`` items, and an unlabelled ``pool`` of
PNG files for self-evolution; pool images whose pixels equal a test/validation image are dropped.
Each pool scene keeps the question its generator built it for (``pool_questions``, never its answer):
the ``oracle`` arm of the study asks those instead of the Proposer's.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from ..images import pixel_sha256

SIZE, CELL, GRID = 112, 28, 4
COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 70, 220), "yellow": (235, 200, 20)}
SHAPES = ("square", "circle")
MAX_OBJECTS = 6
VARIANTS = ("direct", "reasoning")


@dataclass(frozen=True)
class Obj:
    cell: int  # 0..15, row-major
    colour: str
    shape: str
    margin: int  # pixels left free on each side of the cell


@dataclass
class Item:
    """One labelled example: a scene, a question about it and its exact answer."""

    objects: list[Obj]
    colour: str | None
    shape: str | None
    answer: int
    question: str = ""
    image: Image.Image | None = field(default=None, repr=False, compare=False)

    def matches(self) -> list[Obj]:
        return [o for o in self.objects if _match(o, self.colour, self.shape)]

    def target(self, variant: str = "direct") -> str:
        """The Solver's supervised completion for this item."""
        if variant == "direct":
            return f"<answer>{self.answer}</answer>"
        reading = ", ".join(f"{o.colour} {o.shape}" for o in sorted(self.matches(), key=lambda o: o.cell))
        return f"{reading or 'none'} <answer>{self.answer}</answer>"


def question_text(colour: str | None, shape: str | None) -> str:
    noun = f"{shape}s" if shape else "shapes"
    return f"How many {colour + ' ' if colour else ''}{noun} are in the image?"


def all_questions() -> list[str]:
    """Every question the world can ask (15 templates)."""
    return [question_text(c, s) for c in (None, *COLOURS) for s in (None, *SHAPES)]


def parse_world_question(question: str) -> tuple[str | None, str | None] | None:
    """(colour, shape) filter of a world question, None if ``question`` is not one of them."""
    for c in (None, *COLOURS):
        for s in (None, *SHAPES):
            if question.strip().lower() == question_text(c, s).lower():
                return c, s
    return None


def _match(o: Obj, colour: str | None, shape: str | None) -> bool:
    return (colour is None or o.colour == colour) and (shape is None or o.shape == shape)


def count(objects: list[Obj], colour: str | None, shape: str | None) -> int:
    """Exact ground truth for a counting question."""
    return sum(_match(o, colour, shape) for o in objects)


def render(objects: list[Obj]) -> Image.Image:
    im = Image.new("RGB", (SIZE, SIZE), "white")
    d = ImageDraw.Draw(im)
    for o in objects:
        x, y = (o.cell % GRID) * CELL, (o.cell // GRID) * CELL
        box = [x + o.margin, y + o.margin, x + CELL - 1 - o.margin, y + CELL - 1 - o.margin]
        (d.rectangle if o.shape == "square" else d.ellipse)(box, fill=COLOURS[o.colour])
    return im


def _random_obj(rng: random.Random, cell: int, want: bool, colour: str | None, shape: str | None) -> Obj:
    """An object that matches (``want``) or does not match the (colour, shape) filter."""
    while True:
        o = Obj(cell, rng.choice(list(COLOURS)), rng.choice(SHAPES), rng.randint(3, 6))
        if _match(o, colour, shape) == want:
            return o


def sample_item(rng: random.Random) -> Item:
    """A balanced item: pick the filter and the answer first, then build a scene that has it."""
    colour = rng.choice([None, *COLOURS])
    shape = rng.choice([None, *SHAPES])
    if colour is None and shape is None:
        answer = rng.randint(1, MAX_OBJECTS)
        n_other = 0
    else:
        answer = rng.randint(0, MAX_OBJECTS)
        n_other = rng.randint(1 if answer == 0 else 0, MAX_OBJECTS - answer)
    cells = rng.sample(range(GRID * GRID), answer + n_other)
    objects = [_random_obj(rng, c, i < answer, colour, shape) for i, c in enumerate(cells)]
    objects.sort(key=lambda o: o.cell)
    assert count(objects, colour, shape) == answer
    item = Item(objects, colour, shape, answer, question_text(colour, shape))
    item.image = render(objects)
    return item


@dataclass
class World:
    """All splits of one seeded world. Build with :func:`make_world`."""

    seed: int
    warmstart: list[Item]
    validation: list[Item]
    test: list[Item]
    pool: list[list[Obj]]
    pool_questions: list[str] = field(default_factory=list)
    """The generator's question for each pool scene (its answer is thrown away)."""

    def write_pool(self, folder: str | Path) -> Path:
        """Write the unlabelled pool as PNGs (``pool_00000.png`` ...) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for i, objects in enumerate(self.pool):
            render(objects).save(folder / f"pool_{i:05d}.png")
        return folder

    def answer_rates(self, split: str = "test") -> dict[str, float]:
        items = getattr(self, split)
        c = Counter(str(it.answer) for it in items)
        return {a: n / len(items) for a, n in sorted(c.items())}

    def summary(self) -> dict:
        rates = self.answer_rates("test")
        return {"seed": self.seed, "warmstart": len(self.warmstart), "validation": len(self.validation),
                "test": len(self.test), "pool": len(self.pool), "test_answer_rates": rates,
                "test_most_frequent_answer_rate": max(rates.values())}


def make_world(seed: int = 0, n_warmstart: int = 3000, n_validation: int = 200, n_test: int = 500,
               n_pool: int = 1000) -> World:
    """Seeded splits, each from its own generator (a smaller split is a prefix of a bigger one).

    Held-out images (validation + test) never appear in the warm start or the pool (pixel hashes).
    """
    def rng(split: str) -> random.Random:
        return random.Random(f"{seed}-{split}")

    r = rng("test")
    test = [sample_item(r) for _ in range(n_test)]
    r = rng("validation")
    validation = [sample_item(r) for _ in range(n_validation)]
    held_out = {pixel_sha256(it.image) for it in test + validation}
    r, warm = rng("warmstart"), []
    while len(warm) < n_warmstart:
        it = sample_item(r)
        if pixel_sha256(it.image) not in held_out:
            warm.append(it)
    r, pool, questions = rng("pool"), [], []
    while len(pool) < n_pool:
        it = sample_item(r)
        if pixel_sha256(it.image) not in held_out:
            pool.append(it.objects)
            questions.append(it.question)
    return World(seed, warm, validation, test, pool, questions)


def pool_index(image_path: str | Path) -> int | None:
    """Index of a pool image from its file name (``pool_<i>.png``, see :meth:`World.write_pool`)."""
    m = re.search(r"pool_(\d+)\.png$", str(image_path))
    return int(m.group(1)) if m else None


def pool_answer(world: World, image_path: str | Path, question: str) -> int | None:
    """Exact answer to ``question`` about the pool image ``image_path``; None when the question is not
    one the world can ask."""
    f = parse_world_question(question)
    i = pool_index(image_path)
    if f is None or i is None:
        return None
    return count(world.pool[i], *f)


def check_pool_disjoint(world: World, pool_dir: str | Path) -> dict:
    """Hash every PNG in ``pool_dir`` (decoded pixels) and count those equal to a test image."""
    from ..images import image_sha256, scan_images

    test_hashes = {pixel_sha256(it.image) for it in world.test}
    files = scan_images(pool_dir)
    overlap = [str(p) for p in files if image_sha256(p) in test_hashes]
    return {"pool_files": len(files), "test_images": len(test_hashes), "overlap": overlap}



def world_question_rate(questions: list[str]) -> float:
    """Share of ``questions`` that are questions the world can ask (:func:`parse_world_question`)."""
    if not questions:
        raise ValueError("world_question_rate needs at least one question")
    return sum(parse_world_question(q) is not None for q in questions) / len(questions)


def write_world_images(folder: str | Path, n: int = 64, seed: int = 0) -> tuple[World, Path]:
    """The seeded world (its first ``n`` pool scenes, a 200-item validation and 500-item test split) and
    ``folder`` holding those pool scenes as ``pool_<i>.png`` (for :func:`pool_answer`)."""
    world = make_world(seed, n_warmstart=0, n_pool=n)
    return world, world.write_pool(folder)
