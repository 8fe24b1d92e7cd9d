"""Benchmark records: local folders holding ``data.jsonl`` (+ images) and the hub sets lmms-eval uses.

A local folder has one JSON object per line with the dataset's field names and an ``image`` path
relative to the folder. Every record gets ``_image_path`` (absolute) and ``_row`` (line number). A
missing field or image is a :class:`DatasetError` naming the record.

Where the real samples live is a setting: ``$EVOLMM_BENCHMARKS_DIR`` (a folder holding one sub-folder per
benchmark, named by :attr:`~.tasks.Task.local_folder`). Unset, there is no local default and records
come from the hub.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

from ..errors import UserError
from ..images import load_image
from .tasks import Task, get_task

BENCHMARKS_DIR_ENV = "EVOLMM_BENCHMARKS_DIR"
HUB_IMAGE_FIELDS = ("decoded_image", "image", "image_1")


class DatasetError(UserError, ValueError):
    """A benchmark file or record cannot be used (named in the message)."""


def benchmarks_dir() -> Path | None:
    """``$EVOLMM_BENCHMARKS_DIR`` (the folder of local benchmark samples), or None when unset."""
    value = os.environ.get(BENCHMARKS_DIR_ENV)
    return Path(value).expanduser() if value else None


def local_sample(benchmark: str | Task) -> Path | None:
    """The benchmark's sample folder under :func:`benchmarks_dir` when it holds a ``data.jsonl``."""
    task, root = get_task(benchmark), benchmarks_dir()
    if root is None or task.local_folder is None or not (root / task.local_folder / "data.jsonl").is_file():
        return None
    return root / task.local_folder


def record_id(doc: dict) -> str:
    for key in ("id", "pid", "question_id", "questionId", "sample_index", "_row"):
        if doc.get(key) is not None:
            return str(doc[key])
    return "?"


def load_local(benchmark: str | Task, folder: str | os.PathLike, limit: int | None = None,
               require_images: bool = True) -> list[dict]:
    """Records of ``folder/data.jsonl`` checked for ``benchmark``'s fields (and image files)."""
    task = get_task(benchmark)
    folder = Path(folder)
    path = folder / "data.jsonl"
    if not path.is_file():
        raise DatasetError(f"{path}: no data.jsonl (expected one JSON record per line)")
    records = []
    with open(path, encoding="utf-8") as f:
        for row, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path} line {row}: not JSON ({e})") from None
            if not isinstance(doc, dict):
                raise DatasetError(f"{path} line {row}: expected a JSON object")
            doc["_row"] = row
            missing = [k for k in task.fields if k not in doc]
            if missing:
                raise DatasetError(f"{path} line {row} (record {record_id(doc)}): missing field(s) {missing}")
            if doc.get("image"):
                doc["_image_path"] = str((folder / str(doc["image"])).resolve())
            if require_images and not (doc.get("_image_path") and Path(doc["_image_path"]).is_file()):
                raise DatasetError(f"{path} line {row} (record {record_id(doc)}): image "
                                   f"{doc.get('image')!r} not found under {folder}")
            records.append(doc)
            if limit is not None and len(records) >= limit:
                break
    return records


def load_hub(benchmark: str | Task, split: str | None = None, limit: int | None = None) -> list[dict]:
    """Records of the hub dataset lmms-eval evaluates (needs the network or a local hub cache)."""
    import datasets

    task = get_task(benchmark)
    split = split or task.hub_split
    try:
        ds = datasets.load_dataset(task.hub_path, task.hub_name, split=split)
    except Exception as e:  # noqa: BLE001 - offline / missing cache: say what to do
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DatasetError(f"cannot load {task.hub_path} ({split}) from the hub: {reason}. Offline, pass a "
                           f"local folder with data.jsonl (data_dir=..., --data-dir) or set "
                           f"{BENCHMARKS_DIR_ENV}") from None
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    missing = [k for k in task.fields if k not in ds.column_names]
    if missing:
        raise DatasetError(f"{task.hub_path} ({split}): missing field(s) {missing}")
    return [dict(r, _row=i) for i, r in enumerate(ds)]


def load_benchmark(benchmark: str | Task, data_dir: str | os.PathLike | None = None, split: str | None = None,
                   limit: int | None = None, require_images: bool = True) -> list[dict]:
    """``data_dir`` a folder → local records; ``"hub"`` → the hub set; None → the sample under
    ``$EVOLMM_BENCHMARKS_DIR`` when there is one, else the hub set."""
    task = get_task(benchmark)
    if data_dir is not None and str(data_dir) == "hub":
        return load_hub(task, split, limit)
    if data_dir is None:
        local = local_sample(task)
        return load_hub(task, split, limit) if local is None else load_local(task, local, limit, require_images)
    if not Path(data_dir).is_dir():
        raise DatasetError(f"{data_dir}: no such folder (expected a benchmark folder with data.jsonl, or 'hub')")
    return load_local(task, data_dir, limit, require_images)


def record_image(doc: dict) -> Image.Image:
    """The record's image as RGB (local file, or the hub's decoded PIL image)."""
    if doc.get("_image_path"):
        return load_image(doc["_image_path"])
    for key in HUB_IMAGE_FIELDS:
        if isinstance(doc.get(key), Image.Image):
            return doc[key].convert("RGB")
    raise DatasetError(f"record {record_id(doc)}: no image")
