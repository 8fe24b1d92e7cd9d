"""Execute the numbered notebook chain with papermill into a run folder (sources stay output-free)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import UserError

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def kernel_name() -> str:
    """The kit's registered kernel ("evolmm", installed by `make`), else this interpreter's python3."""
    from jupyter_client.kernelspec import KernelSpecManager

    return "evolmm" if "evolmm" in KernelSpecManager().find_kernel_specs() else "python3"


def chain(notebook_dir: Path = NOTEBOOK_DIR, only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks (``NN_*.ipynb``) in order, optionally filtered by prefix or name."""
    books = sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if only:
        books = [b for b in books if any(b.name.startswith(o) or b.stem == o for o in only)]
    return books


def run_chain(output_dir: str | Path, only: list[str] | None = None, parameters: dict | None = None,
              notebook_dir: Path = NOTEBOOK_DIR) -> list[dict]:
    """Execute each notebook with ``run_dir=output_dir`` (+ ``parameters``); return timings."""
    import papermill as pm

    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    books = chain(notebook_dir, only)
    if not books:
        raise UserError(f"no notebooks matching {only or '*'} in {notebook_dir}")
    results = []
    for nb in books:
        t0 = time.time()
        print(f"[evolmm] executing {nb.name} -> {out / nb.name}", flush=True)
        pm.execute_notebook(str(nb), str(out / nb.name), parameters={"run_dir": str(out), **(parameters or {})},
                            kernel_name=kernel_name(), cwd=str(nb.parent), progress_bar=False)
        results.append({"notebook": nb.name, "seconds": round(time.time() - t0, 1)})
        print(f"[evolmm] {nb.name} done in {results[-1]['seconds']} s", flush=True)
    return results


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", default="runs/notebooks", help="where executed notebooks and artefacts go")
    p.add_argument("--only", nargs="*", help="notebook prefixes to run (e.g. 01 02)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameters-cell override for every notebook, VALUE a Python literal or else YAML "
                        "(e.g. model=qwen2.5-vl-7b, steps=40, lr=1e-6)")


def parse_params(items: list[str]) -> dict:
    """``["steps=40", "model=tiny"]`` → ``{"steps": 40, "model": "tiny"}`` (a Python literal, else YAML)."""
    import ast

    import yaml

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"--param {item!r}: expected NAME=VALUE, e.g. --param model=qwen2.5-vl-7b")
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[name] = yaml.safe_load(value)
    return out


def main(args: argparse.Namespace) -> int:
    results = run_chain(args.output_dir, args.only, parse_params(args.param))
    total = sum(r["seconds"] for r in results)
    print(f"[evolmm] chain of {len(results)} notebooks done in {total:.1f} s", file=sys.stderr)
    return 0
