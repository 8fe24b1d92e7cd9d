"""Install files agree: exact CPU pins == environment.yml; CI runs the README's test command."""

import re

import yaml


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_requirements_and_environment_yml_pin_the_same_versions(repo_root):
    req = _pins((repo_root / "requirements" / "cpu.txt").read_text().splitlines())
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert req and req == _pins(pip_section)
    for name in ("torch", "torchvision", "transformers", "trl", "peft", "accelerate", "papermill"):
        assert name in req


def test_pins_are_what_is_installed(repo_root):
    from importlib.metadata import PackageNotFoundError, version

    req = _pins((repo_root / "requirements" / "cpu.txt").read_text().splitlines())
    for name, pinned in req.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue
        assert installed.split("+")[0] == pinned, name


def test_ci_runs_the_readme_test_command(repo_root):
    ci = (repo_root / ".ci" / "run").read_text()
    commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
    readme = (repo_root / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:40])
    assert "make test" in first_screen and "make reproduce" in first_screen
