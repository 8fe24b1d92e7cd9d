"""Shared test fixtures: offline hub, a session-wide tiny backbone, small image folders."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("EVOLMM_CACHE", str(REPO / ".cache" / "evolmm"))
# the library reads benchmark samples only from $EVOLMM_BENCHMARKS_DIR; the tests default it to ../shared
os.environ.setdefault("EVOLMM_BENCHMARKS_DIR", str(REPO.parent / "shared" / "benchmarks"))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def in_ci() -> bool:
    """True under CI (``CI=true``, as GitHub Actions, GitLab and most runners set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    """The real benchmark samples (``EVOLMM_BENCHMARKS_DIR``, else ``../shared/benchmarks``).

    Missing: a counted skip on a developer machine, a failure in CI, where a skip would pass unseen.
    """
    path = Path(os.environ["EVOLMM_BENCHMARKS_DIR"])
    if not path.is_dir():
        message = f"shared benchmark samples not found at {path} (set EVOLMM_BENCHMARKS_DIR)"
        if in_ci():
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def tiny_config():
    from evolmm_lib.config import EvoLMMConfig

    return EvoLMMConfig(max_new_tokens_solver=16, max_new_tokens_proposer=16)


@pytest.fixture(scope="session")
def tiny_backbone(tiny_config):
    from evolmm_lib.backbone import load_backbone

    return load_backbone("tiny", config=tiny_config)


def make_images(folder: Path, n: int = 4, size: int = 112) -> list[Path]:
    """Write ``n`` distinct small PNGs (coloured squares) into ``folder``."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    colours = ["red", "green", "blue", "orange", "purple", "black", "cyan", "pink"]
    for i in range(n):
        im = Image.new("RGB", (size, size), "white")
        d = ImageDraw.Draw(im)
        d.rectangle([8 + 4 * i, 8, 40 + 4 * i, 40], fill=colours[i % len(colours)])
        p = folder / f"img_{i:02d}.png"
        im.save(p)
        paths.append(p)
    return paths


@pytest.fixture
def image_dir(tmp_path) -> Path:
    make_images(tmp_path / "images")
    return tmp_path / "images"
