"""The demo images in data/images are regenerated pixel for pixel by evolmm_lib.sample_images."""

from __future__ import annotations

from PIL import Image

from evolmm_lib.images import ImagePool
from evolmm_lib.sample_images import CATALOGUE, generate_images, write_sample_images


def test_regenerating_gives_identical_pixels(tmp_path, repo_root):
    first = write_sample_images(tmp_path / "a")
    second = write_sample_images(tmp_path / "b")
    assert [p.name for p in first] == [f"{stem}.png" for stem, _, _ in CATALOGUE]
    for a, b in zip(first, second):
        assert Image.open(a).tobytes() == Image.open(b).tobytes()
    committed = repo_root / "data" / "images"
    for p in first:  # the committed pool is exactly what the generator draws
        assert Image.open(committed / p.name).convert("RGB").tobytes() == Image.open(p).convert("RGB").tobytes(), p.name


def test_images_are_small_and_seed_dependent(tmp_path):
    paths = write_sample_images(tmp_path)
    assert len(paths) == 12
    for p in paths:
        w, h = Image.open(p).size
        assert 224 <= max(w, h) <= 448 and min(w, h) >= 224 * 0.75, (p.name, w, h)
        assert p.stat().st_size < 20_000, p.name
    other = generate_images(seed=1)
    same = generate_images(seed=0)
    assert any(other[k].tobytes() != same[k].tobytes() for k in same)


def test_pool_reads_the_generated_folder(tmp_path):
    write_sample_images(tmp_path)
    pool = ImagePool(str(tmp_path), seed=42)
    seen = {pool.next()[1] for _ in range(12)}
    assert len(seen) == 12 and not pool.skipped
