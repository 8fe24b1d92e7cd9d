"""Every lmms-eval name the kit gives (README command, plugin docstring, task registry) is a *task* of the
installed lmms-eval, not a group, read offline from its task YAMLs."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from evolmm_lib.evaluation import lmms_eval_plugin
from evolmm_lib.evaluation.tasks import TASKS

_NAME = r'[ \t]*["\']?([\w.\-]+)["\']?[ \t]*(?:#.*)?$'


def installed_task_yamls() -> tuple[set[str], set[str]]:
    """(task names, group names) declared by the installed lmms-eval's YAML files (``task: x`` / ``group: x``)."""
    spec = importlib.util.find_spec("lmms_eval")  # make test installs the eval extra: no skip
    assert spec is not None, "lmms-eval is not installed: pip install -r requirements/extras.txt"
    tasks, groups = set(), set()
    for path in (Path(spec.submodule_search_locations[0]) / "tasks").rglob("*.yaml"):
        text = path.read_text(errors="replace")
        tasks.update(re.findall(r"^task:" + _NAME, text, re.M))  # a group's `task:` is a list: no match
        groups.update(re.findall(r"^group:" + _NAME, text, re.M))
    return tasks, groups


def documented_task_names(repo_root: Path) -> dict[str, set[str]]:
    """Where the kit names lmms-eval tasks -> the names given there."""
    def tasks_flags(text: str) -> set[str]:
        return {n for flag in re.findall(r"--tasks\s+([\w.,\-]+)", text) for n in flag.split(",") if n}

    return {"README.md": tasks_flags((repo_root / "README.md").read_text()),
            "lmms_eval_plugin docstring": tasks_flags(lmms_eval_plugin.__doc__),
            "evaluation.tasks.TASKS": {t.lmms_eval_task for t in TASKS.values()}}


def test_every_documented_name_is_an_installed_task_not_a_group(repo_root):
    tasks, groups = installed_task_yamls()
    assert "chartqa" in tasks and "mathvista_testmini" in groups  # the reader sees both kinds
    documented = documented_task_names(repo_root)
    assert all(documented.values()), documented
    for where, names in documented.items():
        assert not names & groups, f"{where} names lmms-eval groups: {sorted(names & groups)}"
        assert names <= tasks, f"{where} names no lmms-eval task: {sorted(names - tasks)}"


def test_mathvista_testmini_is_a_group_of_three_prompts(repo_root):
    """The group the README once named; the kit runs one of its tasks."""
    spec = importlib.util.find_spec("lmms_eval")
    group = (Path(spec.submodule_search_locations[0]) / "tasks" / "mathvista" / "mathvista_testmini.yaml").read_text()
    members = re.findall(r"^\s*-\s*([\w.\-]+)\s*$", group, re.M)
    assert sorted(members) == ["mathvista_testmini_cot", "mathvista_testmini_format", "mathvista_testmini_solution"]
    assert TASKS["mathvista"].lmms_eval_task == "mathvista_testmini_format"
