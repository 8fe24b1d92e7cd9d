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


def installed_versions(pins: dict[str, str]) -> dict[str, str | None]:
    """The installed version of each pinned distribution (None when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in pins:
        try:
            out[name] = version(name).split("+")[0]  # torch's local "+cpu" tag
        except PackageNotFoundError:
            out[name] = None
    return out


def test_pins_are_what_is_installed(repo_root):
    """Every exact pin of requirements/cpu.txt is installed at that version (a missing one fails too)."""
    req = _pins((repo_root / "requirements" / "cpu.txt").read_text().splitlines())
    installed = installed_versions(req)
    missing = sorted(n for n, v in installed.items() if v is None)
    wrong = {n: (req[n], v) for n, v in installed.items() if v is not None and v != req[n]}
    assert not missing, f"pinned but not installed: {missing}"
    assert not wrong, f"pinned vs installed: {wrong}"


def test_a_missing_or_wrong_pin_fails_the_check(tmp_path):
    """The check above fails on a pinned package that is not installed (it used to pass over it)."""
    import pytest

    (tmp_path / "requirements").mkdir()
    for line, match in (("evolmm-no-such-distribution==1.0", "not installed"), ("pytest==0.0.1", "pinned vs")):
        (tmp_path / "requirements" / "cpu.txt").write_text(f"PyYAML==6.0.3\n{line}\n")
        with pytest.raises(AssertionError, match=match):
            test_pins_are_what_is_installed(tmp_path)


def test_ci_runs_the_readme_test_command(repo_root):
    ci = (repo_root / ".ci" / "run").read_text()
    commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
    readme = (repo_root / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:40])
    assert "make test" in first_screen and "make reproduce" in first_screen


def test_missing_benchmark_samples_skip_locally_and_fail_in_ci(repo_root, tmp_path):
    """The ``benchmarks_dir`` fixture: a counted skip on a developer machine, a loud failure under CI=true."""
    import os
    import subprocess
    import sys

    (tmp_path / "test_needs_samples.py").write_text("def test_it(benchmarks_dir):\n    assert benchmarks_dir.is_dir()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root / "tests"), str(repo_root)]),
           "EVOLMM_BENCHMARKS_DIR": str(tmp_path / "absent")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest", "--rootdir", str(tmp_path),
           str(tmp_path / "test_needs_samples.py")]
    local = subprocess.run(cmd, env={**env, "CI": ""}, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout[-1500:]
    ci = subprocess.run(cmd, env={**env, "CI": "true"}, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ci.returncode == 1 and "CI=true: shared benchmark samples not found" in ci.stdout, ci.stdout[-1500:]
