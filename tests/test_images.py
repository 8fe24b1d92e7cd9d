"""Image loading and the pool: clear errors for bad files, counted skips, seeded order."""

import pytest

from evolmm_lib.images import ImageError, ImagePool, image_sha256, load_image, scan_images


def test_bad_files_give_clear_errors(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    good = tmp_path / "ok.png"
    from PIL import Image

    Image.new("RGB", (20, 20), "red").save(good)
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[:40])
    with pytest.raises(ImageError, match="empty file"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(tmp_path / "text.jpg")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(tmp_path / "trunc.png")
    with pytest.raises(ImageError, match="no such image"):
        load_image(tmp_path / "missing.png")
    assert load_image(good).mode == "RGB"


def test_pool_skips_and_counts_bad_files(image_dir):
    (image_dir / "sub").mkdir()
    (image_dir / "sub" / "broken.webp").write_bytes(b"\x00" * 10)
    (image_dir / "zero.tiff").write_bytes(b"")
    (image_dir / "notes.txt").write_text("ignored: not an image extension")
    pool = ImagePool(str(image_dir), seed=1)
    assert len(pool) == 6
    seen = [pool.next()[1].name for _ in range(4)]
    assert len(set(seen)) == 4 and "broken.webp" not in seen and "zero.tiff" not in seen
    assert sorted(k.rsplit("/", 1)[-1] for k in pool.skipped) == ["broken.webp", "zero.tiff"]
    assert pool.position == 6


def test_pool_order_is_seeded(image_dir):
    a = [p.name for p in ImagePool(str(image_dir), seed=42).paths]
    assert a == [p.name for p in ImagePool(str(image_dir), seed=42).paths]
    assert a != [p.name for p in ImagePool(str(image_dir), seed=7).paths] or len(a) < 3
    assert sorted(a) == [p.name for p in scan_images(image_dir)]


def test_empty_missing_and_all_bad_folders(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        ImagePool(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no images"):
        ImagePool(str(tmp_path / "empty"))
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"{i}.png").write_text("x")
    pool = ImagePool(str(bad))
    with pytest.raises(ImageError, match="every file .* unreadable"):
        pool.next()


def test_pixel_hash_ignores_encoding(tmp_path):
    from PIL import Image

    im = Image.new("RGB", (16, 16), (10, 20, 30))
    im.save(tmp_path / "a.png")
    im.save(tmp_path / "b.bmp")
    assert image_sha256(tmp_path / "a.png") == image_sha256(tmp_path / "b.bmp")
