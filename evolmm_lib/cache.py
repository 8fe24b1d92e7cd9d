"""The kit's build cache: models it makes itself (tiny backbone, miniature warm starts), built once.

``$EVOLMM_CACHE`` (default ``~/.cache/evolmm``) holds one folder per built model, named by the hash of
its recipe; a folder is complete when its marker file exists, and it is renamed into place whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path


def save_model_folder(output_dir: str | os.PathLike, model, processor, info_name: str, info: dict) -> Path:
    """``save_pretrained`` model + processor and an ``info_name`` JSON into a temporary sibling folder,
    then rename it onto ``output_dir``: readers never see a half-written folder."""
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=output_dir.parent))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / info_name).write_text(json.dumps(info, indent=1))
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(tmp, output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output_dir


def default_cache_dir() -> Path:
    """``$EVOLMM_CACHE`` or ``~/.cache/evolmm``."""
    return Path(os.environ.get("EVOLMM_CACHE", Path.home() / ".cache" / "evolmm"))


def build_once(path: Path, marker: str, build) -> Path:
    """``path`` if ``path/marker`` exists, else ``build()`` it under an inter-process file lock.

    Several processes (``accelerate launch``, parallel notebooks) may ask for the same cache entry at
    once: one builds, the others wait and then load its folder instead of replacing it under a reader.
    """
    if (path / marker).is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # no POSIX locks (Windows): build without one
            pass
        if not (path / marker).is_file():
            build()
    return path
