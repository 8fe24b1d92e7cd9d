"""Contamination guard: does the training image pool contain the images being evaluated?

Images are compared by a hash of their decoded RGB pixels (:func:`evolmm_lib.images.image_sha256`), so a
re-encoded or renamed copy still matches. A popular VLM-GRPO recipe trains on MathVista testmini and then
reports MathVista: :func:`guard` makes that visible (a loud warning) and refuses unless overridden.
"""

from __future__ import annotations

import logging
import os
import warnings

from PIL import Image

from ..errors import UserError
from ..images import ImageError, image_sha256, pixel_sha256, scan_images
from .datasets import HUB_IMAGE_FIELDS, record_id

log = logging.getLogger("evolmm")


class ContaminationError(UserError, RuntimeError):
    """The training pool overlaps the evaluated benchmark images (a refusal the command line prints as one line)."""


def pool_hashes(pool_dir: str | os.PathLike) -> dict[str, str]:
    """Pixel hash → path for every readable image under ``pool_dir`` (unreadable files ignored)."""
    out = {}
    for p in scan_images(pool_dir):
        try:
            out.setdefault(image_sha256(p), str(p))
        except ImageError:
            continue
    return out


def record_hashes(records: list[dict]) -> dict[str, str]:
    """Pixel hash → record id for the records' images (records without a readable image are ignored)."""
    out = {}
    for doc in records:
        try:
            if doc.get("_image_path"):
                out.setdefault(image_sha256(doc["_image_path"]), record_id(doc))
            else:
                im = next((doc[k] for k in HUB_IMAGE_FIELDS if isinstance(doc.get(k), Image.Image)), None)
                if im is not None:
                    out.setdefault(pixel_sha256(im), record_id(doc))
        except ImageError:
            continue
    return out


def find_overlap(pool_dir: str | os.PathLike, records: list[dict]) -> list[tuple[str, str]]:
    """(pool image path, benchmark record id) for each benchmark image also in the pool."""
    pool = pool_hashes(pool_dir)
    return sorted((pool[h], rid) for h, rid in record_hashes(records).items() if h in pool)


def guard(pool_dir: str | os.PathLike, records: list[dict], benchmark: str = "benchmark",
          allow: bool = False) -> list[tuple[str, str]]:
    """Warn loudly when ``pool_dir`` holds evaluated images; raise :class:`ContaminationError` unless ``allow``."""
    overlap = find_overlap(pool_dir, records)
    if overlap:
        shown = ", ".join(f"{p} = {benchmark} #{rid}" for p, rid in overlap[:5])
        msg = (f"CONTAMINATION: {len(overlap)} of {len(records)} evaluated {benchmark} images are in the training "
               f"pool {pool_dir} ({shown}{' ...' if len(overlap) > 5 else ''}). Scores on them measure "
               "memorisation, not generalisation.")
        log.warning("!" * 20 + " " + msg)
        warnings.warn(msg, stacklevel=2)
        if not allow:
            raise ContaminationError(msg + " Pass allow_contamination=True (--allow-contamination) to evaluate anyway.")
    return overlap
