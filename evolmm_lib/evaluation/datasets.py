"""Benchmark records: local folders holding ``data.jsonl`` (+ images) and the hub sets lmms-eval uses.

A local folder has one JSON object per line with the dataset's field names and an ``image`` path
relative to the folder (``../shared/benchmarks/`` holds real samples in that form). Every record gets
``_image_path`` (absolute) and ``_row`` (line number). A missing field or image is a
:class:`DatasetError` naming the record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

from ..images import load_image
from . import benchmark_module

REPO = Path(__file__).resolve().parents[2]

LOCAL_FOLDERS = {
    "mathvision": "mathvision_testmini",
    "chartqa": "chartqa_test_sample",
    "mathvista": "mathvista_testmini_annotations",
}
"""Default folder (under :func:`benchmarks_dir`) of each benchmark's shared real sample."""

HUB_IMAGE_FIELDS = ("decoded_image", "image", "image_1")


class DatasetError(ValueError):
    """A benchmark file or record cannot be used (named in the message)."""


def benchmarks_dir() -> Path:
    """``$EVOLMM_BENCHMARKS_DIR``, else ``<repo>/../shared/benchmarks``."""
    return Path(os.environ.get("EVOLMM_BENCHMARKS_DIR", REPO.parent / "shared" / "benchmarks"))


def record_id(doc: dict) -> str:
    for key in ("id", "pid", "question_id", "questionId", "sample_index", "_row"):
        if doc.get(key) is not None:
            return str(doc[key])
    return "?"


def load_local(benchmark: str, folder: str | os.PathLike, limit: int | None = None,
               require_images: bool = True) -> list[dict]:
    """Records of ``folder/data.jsonl`` checked for ``benchmark``'s fields (and image files)."""
    module = benchmark_module(benchmark)
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
            missing = [k for k in module.FIELDS if k not in doc]
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


def load_hub(benchmark: str, split: str | None = None, limit: int | None = None) -> list[dict]:
    """Records of the hub dataset lmms-eval evaluates (needs the network or a local hub cache)."""
    import datasets

    hub = dict(benchmark_module(benchmark).HUB)
    split = split or hub.pop("split")
    hub.pop("split", None)
    try:
        ds = datasets.load_dataset(hub["path"], hub.get("name"), split=split)
    except Exception as e:  # noqa: BLE001 - offline / missing cache: say what to do
        raise DatasetError(f"cannot load {hub['path']} ({split}) from the hub: {e}. Offline, pass a local "
                           f"folder with data.jsonl (data_dir=...)") from None
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    missing = [k for k in benchmark_module(benchmark).FIELDS if k not in ds.column_names]
    if missing:
        raise DatasetError(f"{hub['path']} ({split}): missing field(s) {missing}")
    return [dict(r, _row=i) for i, r in enumerate(ds)]


def load_benchmark(benchmark: str, data_dir: str | os.PathLike | None = None, split: str | None = None,
                   limit: int | None = None, require_images: bool = True) -> list[dict]:
    """``data_dir`` a folder → local records; ``"hub"`` → the hub set; None → the shared sample if present."""
    if data_dir is not None and str(data_dir) == "hub":
        return load_hub(benchmark, split, limit)
    if data_dir is None:
        name = benchmark_module(benchmark).__name__.rsplit(".", 1)[-1]
        local = benchmarks_dir() / LOCAL_FOLDERS.get(name, "")
        if name in LOCAL_FOLDERS and (local / "data.jsonl").is_file():
            return load_local(benchmark, local, limit, require_images)
        return load_hub(benchmark, split, limit)
    return load_local(benchmark, data_dir, limit, require_images)


def record_image(doc: dict) -> Image.Image:
    """The record's image as RGB (local file, or the hub's decoded PIL image)."""
    if doc.get("_image_path"):
        return load_image(doc["_image_path"])
    for key in HUB_IMAGE_FIELDS:
        if isinstance(doc.get(key), Image.Image):
            return doc[key].convert("RGB")
    raise DatasetError(f"record {record_id(doc)}: no image")


def record_image_path(doc: dict) -> str | None:
    return doc.get("_image_path")
