"""Demo images the kit draws itself (PIL only, seeded): charts, geometry diagrams, shape scenes.

They are the default unlabelled image pool (``EvoLMMConfig.data_dir = "data/images"``) of notebooks
02–04 and the trainer: the kind of picture the Proposer is meant to ask short-answer questions
about ("What is the value of the tallest bar?", "What is angle C?", "How many red circles?").
Regenerate them with ``python -m evolmm_lib.sample_images data/images``; the same seed gives the
same pixels (fonts: Pillow's embedded default font).
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path
from typing import Callable

from PIL import Image, ImageDraw, ImageFont

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
COLOURS = {"red": "#D62728", "blue": "#1F77B4", "green": "#2CA02C", "yellow": "#E8C547", "purple": "#9467BD"}
WORDS = ["Apples", "Pears", "Plums", "Grapes", "Kiwis", "Limes", "North", "South", "East", "West",
         "Mon", "Tue", "Wed", "Thu", "Fri", "Cars", "Buses", "Bikes", "Trains"]


def _font(size: int = 14) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _centered(d: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int = 14, fill="black") -> None:
    d.text(xy, text, fill=fill, font=_font(size), anchor="mm")


def bar_chart(rng: random.Random, size: int = 320) -> Image.Image:
    """Vertical bars with category labels and the value printed on each bar."""
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    n = rng.randint(3, 5)
    labels = rng.sample(WORDS, n)
    values = [rng.randint(5, 95) for _ in range(n)]
    _centered(d, (size / 2, 16), rng.choice(["Sales by item", "Votes per group", "Units sold"]), 16)
    left, right, top, bottom = 30, size - 15, 40, size - 40
    d.line([(left, top), (left, bottom), (right, bottom)], fill="black", width=2)
    slot = (right - left) / n
    for i, (lab, v) in enumerate(zip(labels, values)):
        x0 = left + i * slot + slot * 0.2
        x1 = left + (i + 1) * slot - slot * 0.2
        y = bottom - (bottom - top - 20) * v / 100
        d.rectangle([x0, y, x1, bottom - 1], fill=PALETTE[i % len(PALETTE)], outline="black")
        _centered(d, ((x0 + x1) / 2, y - 9), str(v), 13)
        _centered(d, ((x0 + x1) / 2, bottom + 14), lab, 12)
    return im


def pie_chart(rng: random.Random, size: int = 320) -> Image.Image:
    """A pie with percentage labels and a legend."""
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    n = rng.randint(3, 4)
    cuts = sorted(rng.sample(range(5, 95, 5), n - 1))
    shares = [b - a for a, b in zip([0] + cuts, cuts + [100])]
    labels = rng.sample(WORDS, n)
    r = size * 0.3
    cx, cy = size * 0.38, size * 0.52
    start = -90.0
    for i, s in enumerate(shares):
        end = start + 3.6 * s
        d.pieslice([cx - r, cy - r, cx + r, cy + r], start, end, fill=PALETTE[i], outline="white", width=2)
        mid = math.radians((start + end) / 2)
        _centered(d, (cx + 0.62 * r * math.cos(mid), cy + 0.62 * r * math.sin(mid)), f"{s}%", 13, "white")
        start = end
    for i, lab in enumerate(labels):
        y = size * 0.3 + i * 22
        d.rectangle([size * 0.76, y - 6, size * 0.76 + 12, y + 6], fill=PALETTE[i])
        d.text((size * 0.76 + 17, y), lab, fill="black", font=_font(12), anchor="lm")
    _centered(d, (size / 2, 16), "Share of total", 16)
    return im


def line_chart(rng: random.Random, size: int = 384) -> Image.Image:
    """A line over five days with labelled points and a y grid."""
    im = Image.new("RGB", (size, int(size * 0.75)), "white")
    w, h = im.size
    d = ImageDraw.Draw(im)
    days = WORDS[10:15]
    values = [rng.randint(10, 60) for _ in days]
    left, right, top, bottom = 40, w - 20, 48, h - 35
    for g in range(0, 61, 20):
        y = bottom - (bottom - top) * g / 60
        d.line([(left, y), (right, y)], fill="#DDDDDD")
        d.text((left - 6, y), str(g), fill="black", font=_font(11), anchor="rm")
    d.line([(left, top), (left, bottom), (right, bottom)], fill="black", width=2)
    pts = [(left + (right - left) * (i + 0.5) / len(days), bottom - (bottom - top) * v / 60) for i, v in enumerate(values)]
    d.line(pts, fill=PALETTE[0], width=3)
    for (x, y), v, day in zip(pts, values, days):
        d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=PALETTE[3])
        _centered(d, (x, y - 12), str(v), 12)
        _centered(d, (x, bottom + 13), day, 12)
    _centered(d, (w / 2, 15), "Temperature (°C)", 15)
    return im


def triangle(rng: random.Random, size: int = 288) -> Image.Image:
    """Triangle ABC with two labelled angles and the third marked '?'."""
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    a_deg = rng.choice(range(35, 80, 5))
    b_deg = rng.choice(range(35, 80, 5))
    base = size * 0.7
    ax, ay = size * 0.15, size * 0.8
    bx, by = ax + base, ay
    # apex from the two base angles: tan(a) = h/x, tan(b) = h/(base-x)
    ta, tb = math.tan(math.radians(a_deg)), math.tan(math.radians(b_deg))
    x = base * tb / (ta + tb)
    hgt = x * ta
    cx, cy = ax + x, ay - min(hgt, size * 0.65)
    d.polygon([(ax, ay), (bx, by), (cx, cy)], outline="black", width=3)
    _centered(d, (ax - 10, ay + 10), "A", 16)
    _centered(d, (bx + 10, by + 10), "B", 16)
    _centered(d, (cx, cy - 12), "C", 16)
    _centered(d, (ax + 34, ay - 12), f"{a_deg}°", 14, COLOURS["blue"])
    _centered(d, (bx - 34, by - 12), f"{b_deg}°", 14, COLOURS["blue"])
    _centered(d, (cx, cy + 26), "?", 16, COLOURS["red"])
    return im


def circles(rng: random.Random, size: int = 288) -> Image.Image:
    """A circle with centre O and a labelled radius, beside a smaller circle with its diameter."""
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    r1 = rng.choice([3, 4, 5, 6])
    r2 = rng.choice([1, 2])
    R = size * 0.28
    cx, cy = size * 0.36, size * 0.5
    d.ellipse([cx - R, cy - R, cx + R, cy + R], outline="black", width=3)
    d.line([(cx, cy), (cx + R, cy)], fill=COLOURS["blue"], width=2)
    d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill="black")
    _centered(d, (cx - 8, cy + 12), "O", 14)
    _centered(d, (cx + R / 2, cy - 10), f"r = {r1} cm", 13, COLOURS["blue"])
    r = R * r2 / r1
    ox, oy = size * 0.82, size * 0.5
    d.ellipse([ox - r, oy - r, ox + r, oy + r], outline="black", width=2)
    d.line([(ox - r, oy), (ox + r, oy)], fill=COLOURS["green"], width=2)
    _centered(d, (ox, oy + r + 14), f"d = {2 * r2} cm", 13, COLOURS["green"])
    return im


def shape_scene(rng: random.Random, size: int = 256) -> Image.Image:
    """Coloured circles, squares and triangles scattered without overlap (counting questions)."""
    im = Image.new("RGB", (size, size), "#F7F7F7")
    d = ImageDraw.Draw(im)
    placed: list[tuple[float, float, float]] = []
    for _ in range(rng.randint(5, 9)):
        for _try in range(50):
            s = rng.randint(16, 30)
            x, y = rng.uniform(s + 4, size - s - 4), rng.uniform(s + 4, size - s - 4)
            if all(math.hypot(x - px, y - py) > s + ps + 6 for px, py, ps in placed):
                break
        else:
            continue
        placed.append((x, y, s))
        fill = COLOURS[rng.choice(sorted(COLOURS))]
        kind = rng.choice(["circle", "square", "triangle"])
        if kind == "circle":
            d.ellipse([x - s, y - s, x + s, y + s], fill=fill, outline="black")
        elif kind == "square":
            d.rectangle([x - s, y - s, x + s, y + s], fill=fill, outline="black")
        else:
            d.polygon([(x, y - s), (x - s, y + s), (x + s, y + s)], fill=fill, outline="black")
    return im


# (file stem, drawer, size): a dozen images, 224–448 px.
CATALOGUE: list[tuple[str, Callable[[random.Random, int], Image.Image], int]] = [
    ("bar_chart_1", bar_chart, 320),
    ("bar_chart_2", bar_chart, 384),
    ("bar_chart_3", bar_chart, 448),
    ("pie_chart_1", pie_chart, 320),
    ("pie_chart_2", pie_chart, 384),
    ("line_chart_1", line_chart, 384),
    ("triangle_1", triangle, 288),
    ("triangle_2", triangle, 320),
    ("circles_1", circles, 288),
    ("shapes_1", shape_scene, 224),
    ("shapes_2", shape_scene, 256),
    ("shapes_3", shape_scene, 288),
]


def generate_images(seed: int = 0) -> dict[str, Image.Image]:
    """The catalogue's images by file stem; each drawer gets its own seeded RNG (seed, index)."""
    return {stem: draw(random.Random(f"{seed}-{i}-{stem}"), size) for i, (stem, draw, size) in enumerate(CATALOGUE)}


def write_sample_images(folder: str | Path = "data/images", seed: int = 0) -> list[Path]:
    """Write the demo PNGs into ``folder`` (created if missing); return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, im in generate_images(seed).items():
        p = folder / f"{stem}.png"
        im.save(p, optimize=True)
        paths.append(p)
    return paths


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default="data/images")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    for p in write_sample_images(a.folder, a.seed):
        print(p)
