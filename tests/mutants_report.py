"""Summarise a mutmut run (``make mutants``): mutation score per module and every untriaged survivor.

Reads mutmut's results under ``mutants/`` (run from the repository root) and the triage list
``tests/mutants_equivalent.txt`` (one ``<mutant name> <reason>`` per line: a survivor no test can kill because
the mutant behaves like the original). Writes ``<out>/report.txt`` (each untriaged survivor with its diff) and
``<out>/summary.md`` (the per-module table); exits 1 when a survivor is neither killed nor listed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

EQUIVALENT = Path(__file__).with_name("mutants_equivalent.txt")
KILLED = {"killed", "timeout", "caught by type check"}
SURVIVED = {"survived", "no tests", "suspicious", "segfault"}


def read_equivalent(path: Path = EQUIVALENT) -> dict[str, str]:
    """Mutant name → the reason it is equivalent."""
    out = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            if not reason.strip():
                raise SystemExit(f"{path}: {name}: give the reason it is equivalent after the name")
            out[name] = reason.strip()
    return out


def read_results(root: Path = Path("mutants")) -> dict[str, dict[str, str]]:
    """Module path → {mutant name: status}, from mutmut's ``*.py.meta`` files."""
    from mutmut.stats import status_by_exit_code

    out = {}
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if codes:
            out[str(meta.relative_to(root))[: -len(".meta")]] = {k: status_by_exit_code[v] for k, v in codes.items()}
    return out


def summarise(results: dict[str, dict[str, str]], equivalent: dict[str, str]):
    """Rows of the per-module table and the untriaged survivors."""
    rows, untriaged = [], []
    for module, statuses in results.items():
        c = Counter()
        for name, status in statuses.items():
            if status in KILLED:
                c["killed"] += 1
            elif status == "not checked":
                c["not checked"] += 1
            elif name in equivalent:
                c["equivalent"] += 1
            else:
                c["survived"] += 1
                untriaged.append((module, name, status))
        checked = c["killed"] + c["survived"] + c["equivalent"]
        score = 100.0 * c["killed"] / (checked - c["equivalent"]) if checked > c["equivalent"] else float("nan")
        rows.append({"module": module, "mutants": len(statuses), "checked": checked, "killed": c["killed"],
                     "equivalent": c["equivalent"], "survived": c["survived"], "not checked": c["not checked"],
                     "score": score})
    return rows, untriaged


def table(rows) -> str:
    head = "| module | mutants | checked | killed | equivalent | survived | not checked | score % |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(f"| `{r['module']}` | {r['mutants']} | {r['checked']} | {r['killed']} | {r['equivalent']} | "
                     f"{r['survived']} | {r['not checked']} | {r['score']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="runs/mutants", help="folder for report.txt and summary.md")
    args = p.parse_args(argv)
    equivalent = read_equivalent()
    results = read_results()
    if not results:
        print("no mutmut results under mutants/: run `make mutants` first", file=sys.stderr)
        return 2
    rows, untriaged = summarise(results, equivalent)
    known = {name for statuses in results.values() for name in statuses}
    stale = sorted(set(equivalent) - known)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(table(rows) + "\n")
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    lines = [table(rows), "", f"{len(untriaged)} untriaged survivor(s): add a test that kills each, or list it in "
             f"{EQUIVALENT.relative_to(EQUIVALENT.parents[1])} with the reason it is equivalent.", ""]
    for module, name, status in untriaged:
        lines += [f"## {name} ({status})", get_diff_for_mutant(name, path=module), ""]
    if stale:
        lines += ["Listed as equivalent but not among this run's mutants (renumbered or gone):", *stale, ""]
    (out / "report.txt").write_text("\n".join(lines))
    print(table(rows))
    print(f"{len(untriaged)} untriaged survivor(s); report: {out / 'report.txt'}")
    return 1 if untriaged else 0


if __name__ == "__main__":
    sys.exit(main())
