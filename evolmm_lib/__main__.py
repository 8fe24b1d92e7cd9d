"""Command line: ``python -m evolmm_lib {notebooks,build-tiny,train,evaluate,miniature} ...``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# command -> (module defining add_arguments(parser) and main(args), one-line help)
COMMANDS = {
    "notebooks": ("evolmm_lib.notebook_chain", "execute the notebook chain with papermill"),
    "build-tiny": ("evolmm_lib.tiny_model", "build the embedded tiny Qwen2.5-VL into a folder"),
    "train": ("evolmm_lib.train_cli", "run EvoLMM self-evolution training"),
    "evaluate": ("evolmm_lib.evaluation.cli", "evaluate a backbone (+ solver adapter) on a benchmark"),
    "miniature": ("evolmm_lib.miniature.cli", "run the CPU miniature reproduction study"),
    "data": ("evolmm_lib.paper_pool", "training data: 'data paper-pool' assembles the paper's raw-image pool"),
}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m evolmm_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    argv = sys.argv[1:] if argv is None else argv
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if argv and argv[0] == name:  # import only the module of the command being run
            mod = importlib.import_module(module)
            mod.add_arguments(p)
    args = parser.parse_args(argv)
    return importlib.import_module(COMMANDS[args.command][0]).main(args) or 0


if __name__ == "__main__":
    sys.exit(main())
