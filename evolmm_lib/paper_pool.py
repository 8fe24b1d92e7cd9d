"""The paper's raw-image training pool, assembled from the hub sets of its six sources (paper §4.1).

EvoLMM trains on about 6K unlabelled images drawn from ChartQA, AI2D, InfoVQA, PlotQA, ChartX and
Geometry3K; the official repository leaves assembling them to the user. :func:`build_pool` takes up
to ``per_source`` images from each source's training split (never the split the paper evaluates on),
drops every label, keeps one copy of each picture (pixel hash, :func:`~.images.pixel_sha256`),
refuses any picture that is in an evaluation set the kit knows (the contamination guard's hashes), and
writes ``images/<source>/<index>.png`` plus ``manifest.jsonl`` (source, split, index, hash, licence).

A build can be killed and run again: every record's outcome is appended to ``manifest.jsonl`` or
``rejected.jsonl`` as soon as it is known, and a rerun continues after the last record seen.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from PIL import Image, UnidentifiedImageError

from .evaluation.contamination import record_hashes
from .images import pixel_sha256

log = logging.getLogger("evolmm")


@dataclass(frozen=True)
class Source:
    """One hub dataset of the pool: where its images are and under which terms."""

    name: str
    path: str
    """Hub dataset id (``load_dataset`` path; ``imagefolder`` with ``data_files`` for an image archive)."""
    config: str | None
    split: str
    """A split the paper's evaluation does not use."""
    image_column: str
    """An ``Image`` column, or a list of images (the first is taken)."""
    licence: str
    data_files: str | None = None


SOURCES: dict[str, Source] = {s.name: s for s in (
    # ChartQA: evaluated on lmms-lab/ChartQA test; the train split (28,299 rows) is disjoint. Card: gpl-3.0.
    Source("chartqa", "HuggingFaceM4/ChartQA", None, "train", "image", "GPL-3.0"),
    # AI2D: evaluated on lmms-lab/ai2d test; the_cauldron's ai2d subset (2,434 rows) is built from training data.
    Source("ai2d", "HuggingFaceM4/the_cauldron", "ai2d", "train", "images", "AI2D terms (the_cauldron subset)"),
    # InfoVQA: evaluated on lmms-lab/DocVQA InfographicVQA validation; the_cauldron holds its train split.
    Source("infovqa", "HuggingFaceM4/the_cauldron", "infographic_vqa", "train", "images",
           "InfographicVQA terms (the_cauldron subset)"),
    # PlotQA: not evaluated by the paper; the_cauldron's plotqa subset (157K rows of PlotQA train).
    Source("plotqa", "HuggingFaceM4/the_cauldron", "plotqa", "train", "images", "PlotQA terms (the_cauldron subset)"),
    # ChartX: not evaluated by the paper; U4R/ChartX ships its 6K charts as one PNG archive. Card: apache-2.0.
    Source("chartx", "imagefolder", None, "train", "image", "Apache-2.0",
           data_files="hf://datasets/U4R/ChartX/ChartX_png.zip"),
    # Geometry3K: not evaluated by the paper (MathVista's geometry items come from other sets). Card: mit.
    Source("geometry3k", "hiyouga/geometry3k", None, "train", "images", "MIT"),
)}

PAPER_POOL_SIZE = 6000
"""About 6K raw images in the paper's training pool (§4.1): 1000 per source by default."""


class PoolError(RuntimeError):
    """The pool cannot be built as asked (unknown source, unreadable source data)."""


# -- loading ------------------------------------------------------------------------------------
def load_source(source: Source, local_root: str | os.PathLike | None = None):
    """The source's rows with images left undecoded (so a corrupt one is counted, not fatal).

    ``local_root/<name>`` (a ``save_to_disk`` folder or a folder of parquet files) replaces the hub.
    """
    import datasets

    try:
        if local_root is not None:
            folder = Path(local_root) / source.name
            if not folder.is_dir():
                raise PoolError(f"{folder}: no local copy of {source.name!r} (save_to_disk folder or parquet files)")
            if (folder / "dataset_info.json").is_file() or (folder / "state.json").is_file():
                ds = datasets.load_from_disk(str(folder))
                ds = ds[source.split] if isinstance(ds, datasets.DatasetDict) else ds
            else:
                files = sorted(str(p) for p in folder.rglob("*.parquet"))
                if not files:
                    raise PoolError(f"{folder}: neither a save_to_disk folder nor parquet files")
                ds = datasets.load_dataset("parquet", data_files=files, split="train")
        else:
            ds = datasets.load_dataset(source.path, source.config, split=source.split, streaming=True,
                                       data_files=source.data_files)
    except PoolError:
        raise
    except Exception as e:  # noqa: BLE001 - offline, missing cache, bad files: one line that says what to do
        raise PoolError(f"cannot load {source.name} ({source.path}, {source.split}): {type(e).__name__}: {e}. "
                        "Offline, pass --local-root DIR holding DIR/<source> copies") from None
    if ds.features is None:  # a streamed set that does not declare its columns: images come decoded
        return ds
    feature = ds.features.get(source.image_column)
    if feature is None:
        raise PoolError(f"{source.name}: no image column {source.image_column!r} (columns: {', '.join(ds.features)})")
    return ds.cast_column(source.image_column, _undecoded(feature))


def _undecoded(feature):
    import datasets

    if isinstance(feature, datasets.Image):
        return datasets.Image(decode=False)
    if isinstance(feature, (datasets.List, datasets.Sequence)):
        return datasets.List(datasets.Image(decode=False))
    raise PoolError(f"image column has type {feature!r}, not Image or a list of Image")


def decode_image(value) -> Image.Image:
    """An undecoded ``Image`` value (``{"bytes", "path"}``, a PIL image, or a list of them) as a loaded RGB image."""
    if isinstance(value, list):
        if not value:
            raise ValueError("empty image list")
        value = value[0]
    if isinstance(value, Image.Image):
        try:
            value.load()
            return value.convert("RGB")
        except (OSError, SyntaxError, ValueError) as e:
            raise ValueError(f"{type(e).__name__}: {e}") from None
    if not isinstance(value, dict):
        raise ValueError(f"no image ({type(value).__name__})")
    data = value.get("bytes")
    try:
        with Image.open(io.BytesIO(data) if data else value["path"]) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{type(e).__name__}: {e}") from None


# -- the evaluation sets the kit knows ------------------------------------------------------------
def known_evaluation_hashes(extra: Iterable[tuple[str, list[dict]]] = ()) -> dict[str, str]:
    """Pixel hash → "benchmark #id" for every evaluation image the kit can read here.

    The local samples under ``$EVOLMM_BENCHMARKS_DIR`` (each task's ``local_folder``) are always read;
    ``extra`` adds (name, records) pairs, e.g. hub evaluation sets loaded by the caller.
    """
    from .evaluation.datasets import benchmarks_dir, load_local
    from .evaluation.tasks import TASKS

    sets = []
    root = benchmarks_dir()
    for name, task in TASKS.items():
        if root is None or task.local_folder is None:
            continue
        path = root / task.local_folder
        if (path / "data.jsonl").is_file():
            sets.append((name, load_local(name, path, require_images=False)))
    out = {}
    for name, records in [*sets, *extra]:
        for h, rid in record_hashes(records).items():
            out.setdefault(h, f"{name} #{rid}")
    log.info("contamination guard: %d evaluation images from %s", len(out), ", ".join(n for n, _ in sets) or "none")
    return out


# -- the build ----------------------------------------------------------------------------------
@dataclass
class PoolState:
    """What ``manifest.jsonl`` and ``rejected.jsonl`` already hold (the resume point)."""

    next_index: dict[str, int]
    hashes: set[str]
    counts: dict[str, dict[str, int]]

    @classmethod
    def read(cls, output: Path) -> "PoolState":
        state = cls({}, set(), {})
        for name, kind in (("manifest.jsonl", "kept"), ("rejected.jsonl", None)):
            path = output / name
            if not path.is_file():
                continue
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill: that record is redone
                    continue
                src = row["source"]
                state.next_index[src] = max(state.next_index.get(src, 0), row["index"] + 1)
                reason = kind or row["reason"]
                state.counts.setdefault(src, {}).setdefault(reason, 0)
                state.counts[src][reason] += 1
                if kind == "kept":
                    state.hashes.add(row["hash"])
        return state

    def kept(self, source: str) -> int:
        return self.counts.get(source, {}).get("kept", 0)


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def build_pool(
    output: str | os.PathLike,
    per_source: int = PAPER_POOL_SIZE // len(SOURCES),
    sources: Iterable[str] | None = None,
    local_root: str | os.PathLike | None = None,
    eval_hashes: dict[str, str] | None = None,
    loader: Callable[[Source, str | os.PathLike | None], Iterable[dict]] = load_source,
    progress: bool = True,
) -> dict[str, dict[str, int]]:
    """Take up to ``per_source`` new images from each source into ``output``; returns counts per source.

    Counts: ``kept``, ``duplicate`` (same pixels as a kept image), ``contaminated`` (in an evaluation
    set), ``corrupt`` (no decodable image). Running it again on the same ``output`` resumes.
    """
    from tqdm.auto import tqdm

    names = list(sources) if sources else list(SOURCES)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise PoolError(f"unknown source(s) {unknown}: expected some of {', '.join(SOURCES)}")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    eval_hashes = known_evaluation_hashes() if eval_hashes is None else eval_hashes
    state = PoolState.read(output)
    for name in names:
        source = SOURCES[name]
        if state.kept(name) >= per_source:
            continue
        start = state.next_index.get(name, 0)
        folder = output / "images" / name
        folder.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=per_source, initial=state.kept(name), desc=f"pool {name}", disable=not progress)
        for index, row in _rows_from(loader(source, local_root), start):
            outcome = _take(source, index, row, folder, output, state, eval_hashes)
            state.counts.setdefault(name, {}).setdefault(outcome, 0)
            state.counts[name][outcome] += 1
            if outcome == "kept":
                bar.update(1)
                if state.kept(name) >= per_source:
                    break
        bar.close()
        if state.kept(name) < per_source:
            log.warning("%s: only %d images (source exhausted)", name, state.kept(name))
    _write_summary(output, state.counts)
    return {n: dict(state.counts.get(n, {})) for n in names}


def _rows_from(rows: Iterable[dict], start: int) -> Iterator[tuple[int, dict]]:
    """(index, row) from ``start`` on; a hub split is skipped forward without decoding anything."""
    if start and hasattr(rows, "skip"):
        yield from enumerate(rows.skip(start), start)
        return
    for index, row in enumerate(rows):
        if index >= start:
            yield index, row


def _take(source: Source, index: int, row: dict, folder: Path, output: Path, state: PoolState,
          eval_hashes: dict[str, str]) -> str:
    """Decide one record (keep / duplicate / contaminated / corrupt) and append its outcome."""
    base = {"source": source.name, "split": source.split, "index": index}
    try:
        image = decode_image(row.get(source.image_column))
    except ValueError as e:
        _append(output / "rejected.jsonl", {**base, "reason": "corrupt", "detail": str(e)[:200]})
        return "corrupt"
    digest = pixel_sha256(image)
    if digest in eval_hashes:
        _append(output / "rejected.jsonl", {**base, "reason": "contaminated", "hash": digest,
                                            "detail": eval_hashes[digest]})
        return "contaminated"
    if digest in state.hashes:
        _append(output / "rejected.jsonl", {**base, "reason": "duplicate", "hash": digest})
        return "duplicate"
    path = folder / f"{index:07d}.png"
    tmp = path.with_suffix(".tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    state.hashes.add(digest)
    _append(output / "manifest.jsonl", {**base, "hash": digest, "licence": source.licence,
                                        "file": str(path.relative_to(output)), "width": image.width,
                                        "height": image.height})
    return "kept"


def _write_summary(output: Path, counts: dict[str, dict[str, int]]) -> None:
    summary = {"sources": {n: {"hub": SOURCES[n].path, "config": SOURCES[n].config, "split": SOURCES[n].split,
                               "licence": SOURCES[n].licence, **c} for n, c in counts.items()},
               "images": sum(c.get("kept", 0) for c in counts.values())}
    (output / "summary.json").write_text(json.dumps(summary, indent=1))


# -- command line: python -m evolmm_lib data paper-pool ... ---------------------------------------
def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="data_command", required=True)
    pp = sub.add_parser("paper-pool", help="assemble the paper's raw-image pool from its six hub sources")
    pp.add_argument("--output", required=True, help="pool folder (images/, manifest.jsonl); rerun to resume")
    pp.add_argument("--per-source", type=int, default=PAPER_POOL_SIZE // len(SOURCES),
                    help="images to keep from each source (default: 1000, about 6K in all as in the paper)")
    pp.add_argument("--sources", nargs="+", default=None, choices=list(SOURCES), help="default: all six")
    pp.add_argument("--local-root", default=None, help="read DIR/<source> (save_to_disk or parquet) instead of the hub")
    pp.add_argument("--guard-hub", nargs="*", default=[], metavar="BENCHMARK",
                    help="also refuse the images of these hub evaluation sets (e.g. chartqa ai2d infovqa; needs the hub)")
    pp.add_argument("--no-progress", action="store_true")


def main(args) -> int:
    if args.per_source < 1:
        print("error: --per-source must be a positive integer")
        return 2
    try:
        from .evaluation.datasets import DatasetError, load_hub

        try:
            extra = [(b, load_hub(b)) for b in args.guard_hub]
        except (DatasetError, ValueError) as e:
            print(f"error: {e}")
            return 1
        counts = build_pool(args.output, args.per_source, args.sources, args.local_root,
                            eval_hashes=known_evaluation_hashes(extra), progress=not args.no_progress)
    except PoolError as e:
        print(f"error: {e}")
        return 1
    for name, c in counts.items():
        print(f"{name:11s} kept {c.get('kept', 0):5d}  duplicate {c.get('duplicate', 0):4d}  "
              f"contaminated {c.get('contaminated', 0):4d}  corrupt {c.get('corrupt', 0):4d}")
    print(f"manifest: {Path(args.output) / 'manifest.jsonl'}")
    return 0
