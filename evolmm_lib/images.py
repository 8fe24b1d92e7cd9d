"""Images: a loader with clear errors and the unlabelled image pool the self-evolution reads.

The pool scans a folder recursively (png/jpg/jpeg/webp/bmp/tiff), orders files by a seeded
permutation (official ``ImagePool``: sorted paths, ``random.Random(seed).shuffle``), and skips
unreadable files, counting them. ``scan="official"`` lists files as the official ``ImagePool`` does:
only the non-hidden first-level subfolders when there are any (files directly under the root are then
ignored), absolute path strings sorted as strings.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import UserError

log = logging.getLogger("evolmm")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tiff", ".tif")
OFFICIAL_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tiff")
SCANS = ("recursive", "official")


class ImageError(UserError, ValueError):
    """An image file cannot be used; ``reason`` is one of :data:`SKIP_REASONS` (or "folder")."""

    def __init__(self, message: str, reason: str = "folder") -> None:
        super().__init__(message)
        self.reason = reason


SKIP_REASONS = ("missing", "empty", "unreadable", "extreme_aspect")
"""Why a pool file was skipped: gone since the scan, 0 bytes, not decodable as an image, too thin."""
MAX_ASPECT_RATIO = 200
"""Longest/shortest side beyond which Qwen2.5-VL's image processor refuses an image (``smart_resize``)."""


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open ``path`` as a fully decoded RGB image, or raise :class:`ImageError` saying why."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file", "missing")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)", "empty")
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: not a readable image ({type(e).__name__}: {e})", "unreadable") from None


def pixel_sha256(im: Image.Image) -> str:
    """The kit's one image hash: SHA-256 of the size and the decoded RGB pixels, so a re-encoded copy of an
    image (PNG ↔ BMP, a hub record ↔ a file) still matches."""
    im = im.convert("RGB")
    h = hashlib.sha256(f"{im.size}".encode())
    h.update(im.tobytes())
    return h.hexdigest()


def image_sha256(path: str | os.PathLike) -> str:
    """:func:`pixel_sha256` of an image file."""
    return pixel_sha256(load_image(path))


def scan_images(root: str | os.PathLike) -> list[Path]:
    """Image-extension files under ``root`` (recursive, hidden files skipped), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise ImageError(f"image folder not found: {root}")
    found = [
        Path(d) / f
        for d, dirs, files in os.walk(root)
        for f in files
        if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")
    ]
    return sorted(found)


def scan_images_official(root: str | os.PathLike) -> list[Path]:
    """The official ``ImagePool`` listing: first-level subfolders (else the root), walked recursively,
    non-hidden image files, absolute paths sorted as strings."""
    top = os.path.abspath(root)
    if not os.path.isdir(top):
        raise ImageError(f"image folder not found: {root}")
    chosen = [os.path.join(top, d) for d in sorted(os.listdir(top))
              if os.path.isdir(os.path.join(top, d)) and not d.startswith(".")] or [top]
    found = [os.path.join(d, f) for sub in chosen for d, _, files in os.walk(sub) for f in files
             if f.lower().endswith(OFFICIAL_IMAGE_EXTENSIONS) and not f.startswith(".")]
    return [Path(p) for p in sorted(found)]


@dataclass
class ImagePool:
    """Unlabelled images in a seeded order; ``next()`` returns the next readable one."""

    root: str
    seed: int = 42
    position: int = 0
    """How many pool entries have been consumed (readable or not): the resume point."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Skipped file → its reason (:data:`SKIP_REASONS`)."""
    scan: str = "recursive"
    """recursive (kit) or official (see :func:`scan_images_official`)."""
    paths: list[Path] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.scan not in SCANS:
            raise ValueError(f"scan={self.scan!r}: expected one of {', '.join(SCANS)}")
        self.paths = scan_images_official(self.root) if self.scan == "official" else scan_images(self.root)
        if not self.paths:
            raise ImageError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {self.root}")
        order = list(range(len(self.paths)))
        random.Random(self.seed).shuffle(order)
        self.paths = [self.paths[i] for i in order]

    def __len__(self) -> int:
        return len(self.paths)

    def next(self) -> tuple[Image.Image, Path]:
        """The next readable image (wrapping around); unreadable files are skipped and counted."""
        for _ in range(len(self.paths)):
            path = self.paths[self.position % len(self.paths)]
            self.position += 1
            if str(path) in self.skipped:
                continue
            try:
                image = load_image(path)
                if max(image.size) > MAX_ASPECT_RATIO * min(image.size):
                    raise ImageError(f"{path}: {image.width}x{image.height} pixels, aspect ratio over "
                                     f"{MAX_ASPECT_RATIO} (the image processor refuses it)", "extreme_aspect")
                return image, path
            except ImageError as e:
                self.skipped[str(path)] = e.reason
                log.warning("skipping %s", e)
        raise ImageError(f"every file under {self.root} is unreadable ({len(self.skipped)} skipped: "
                         f"{self.skipped_by_reason()})")

    def skipped_by_reason(self) -> dict[str, int]:
        """How many pool files were skipped, per reason."""
        return dict(sorted(Counter(self.skipped.values()).items()))
