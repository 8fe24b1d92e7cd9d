"""Colab's install cell, run as a fresh Colab runtime meets it: clone, install, then notebook 04 on `tiny`.

A fresh Colab runtime starts its kernel in /content with ``google.colab`` already imported, and a notebook
opened from GitHub or uploaded comes without the kit. The user sets ``kit_url`` in the first cell, which clones
the kit into ``kit_dir``, changes into its ``notebooks/`` folder, ``%pip install``s it with the kernel's own
interpreter and re-reads the site dirs. Here:

- a temporary folder stands in for /content (the kernel's working folder), ``kit_dir`` is a folder in it and
  ``kit_url`` the ``file://`` URL of a ``git clone`` of this repository (its committed HEAD, what a user clones);
  the test edits those two assignments in a copy of the notebook, as a user edits the cell;
- a stand-in ``google.colab`` package is imported by an IPython startup file, as Colab's kernel imports the
  real one when it starts;
- the kernel runs in a throw-away venv that sees the test environment's packages through a ``.pth`` file naming a
  folder of links to them, all but this kit, so the notebook can import only what the cell installed; the test
  environment itself is never written to (checked);
- pip runs with ``PIP_NO_DEPS=1``, ``PIP_NO_INDEX=1`` and build isolation off: the ``[gpu]`` extra (Unsloth) is
  not installed, so this covers the clone, the editable install of the kit, the site-dir re-read and the rest of
  the notebook, not pip's resolution against Colab's preinstalled packages.

The notebook run takes about a minute on 2 shared cores; the clone and the install take a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import in_ci

from evolmm_lib.notebook_chain import NOTEBOOK_DIR, chain

REPO = Path(__file__).resolve().parent.parent
EXTRAS = {"05": "gpu,eval"}  # every other notebook installs "..[gpu]"
KERNEL = "colab-standin"
PROBE = 'import os, evolmm_lib\nprint("KIT", os.path.realpath(evolmm_lib.__file__))\nprint("CWD", os.getcwd())'


def install_cell(book: Path) -> str:
    return next(c.source for c in nbformat.read(book, 4).cells if c.cell_type == "code")


def test_install_cell_is_the_same_in_every_notebook():
    """One cell text in all six notebooks (05 installs the eval extra as well), so running 04 covers them all."""
    reference = install_cell(NOTEBOOK_DIR / "04_rl_training.ipynb")
    assert '%pip install -q -e "..[gpu]"' in reference and 'if "google.colab" in sys.modules' in reference
    for book in chain():
        extras = EXTRAS.get(book.stem[:2], "gpu")
        assert install_cell(book).replace(f'"..[{extras}]"', '"..[gpu]"') == reference, book.name


def colab_notebook(book: Path, kit_dir: Path, kit_url: str, probe: bool) -> nbformat.NotebookNode:
    """A copy of ``book`` with the user's two edits of the install cell (and a last cell printing the kit's path)."""
    nb = nbformat.read(book, 4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    edits = {'kit_dir = "/content/evolmm"': f"kit_dir = {str(kit_dir)!r}", 'kit_url = ""': f"kit_url = {kit_url!r}"}
    for old, new in edits.items():
        assert cell.source.count(old) == 1, f"the install cell no longer holds {old!r}"
        cell.source = cell.source.replace(old, new)
    if probe:
        nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    return nb


@pytest.fixture(scope="module")
def colab_runtime(tmp_path_factory):
    """(environment for papermill, /content stand-in, file:// URL of a clone of this repository)."""
    if subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True).returncode:
        if in_ci():
            pytest.fail("CI=true: the repository is not a git checkout", pytrace=False)
        pytest.skip("the repository is not a git checkout")
    root = tmp_path_factory.mktemp("colab")
    subprocess.run(["git", "clone", "-q", str(REPO), str(root / "src")], check=True)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_dir = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    # the test environment's packages, this kit excepted, seen through links (its .pth files are not run)
    ours = Path(subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    links = root / "test-env-packages"
    links.mkdir()
    for entry in ours.iterdir():
        if not entry.name.startswith(("evolmm_kit", "__editable__", "__pycache__")) and entry.suffix != ".pth":
            (links / entry.name).symlink_to(entry)
    (site_dir / "test-env-packages.pth").write_text(f"{links}\n")
    (site_dir / "google" / "colab").mkdir(parents=True)  # google/ stays a namespace package (protobuf's too)
    (site_dir / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab\'s google.colab."""\n')
    ipython_dir = root / "ipython"
    (ipython_dir / "profile_default" / "startup").mkdir(parents=True)
    (ipython_dir / "profile_default" / "startup" / "00-colab.py").write_text("import google.colab\n")
    kernel_dir = root / "jupyter" / "kernels" / KERNEL
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab stand-in", "language": "python",
        # PIP_NO_BUILD_ISOLATION=0 turns build isolation off (pip reads this variable inverted)
        "env": {"IPYTHONDIR": str(ipython_dir), "PIP_NO_DEPS": "1", "PIP_NO_INDEX": "1",
                "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}}))
    content = root / "content"
    content.mkdir()
    env = {**os.environ, "JUPYTER_PATH": str(root / "jupyter")}
    return env, content, (root / "src").as_uri()


def papermill(env, notebook: Path, out: Path, cwd: Path, *params: str) -> subprocess.CompletedProcess:
    args = [p for kv in params for p in ("-p", *kv.split("=", 1))]
    return subprocess.run([sys.executable, "-m", "papermill", str(notebook), str(out), "--cwd", str(cwd), "-k", KERNEL,
                           *args], env=env, capture_output=True, text=True, timeout=900)


def outputs_text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream")


@pytest.mark.slow
@pytest.mark.notebooks
def test_install_cell_without_kit_url_stops_with_one_line(colab_runtime, tmp_path):
    """On Colab with no kit in kit_dir and no kit_url, the cell stops the run and says what to set."""
    env, content, _ = colab_runtime
    book = NOTEBOOK_DIR / "04_rl_training.ipynb"
    nb = nbformat.read(book, 4)
    nb.cells = [c for c in nb.cells if c.cell_type == "code"][:1]
    nbformat.write(nb, tmp_path / "only_install.ipynb")
    proc = papermill(env, tmp_path / "only_install.ipynb", tmp_path / "out.ipynb", content)
    assert proc.returncode != 0
    assert "no kit in /content/evolmm: set kit_url (git URL) or kit_dir in this cell" in proc.stderr + proc.stdout


@pytest.mark.slow
@pytest.mark.notebooks
def test_colab_install_cell_clones_installs_and_runs_notebook_04(colab_runtime, tmp_path):
    """The cell clones kit_url, installs the clone, and the rest of notebook 04 trains `tiny` from the clone."""
    env, content, kit_url = colab_runtime
    kit_dir = content / "evolmm"
    ours = subprocess.run([sys.executable, "-c", "import evolmm_lib; print(evolmm_lib.__file__)"],
                          capture_output=True, text=True, check=True).stdout
    upload = tmp_path / "upload"  # the notebook is opened on its own, without its repository
    upload.mkdir()
    nbformat.write(colab_notebook(NOTEBOOK_DIR / "04_rl_training.ipynb", kit_dir, kit_url, probe=True),
                   upload / "04_rl_training.ipynb")
    proc = papermill(env, upload / "04_rl_training.ipynb", tmp_path / "executed.ipynb", content,
                     "model=tiny", "steps=4", "num_solver_samples=2", "max_new_tokens=6")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (kit_dir / "evolmm_lib" / "__init__.py").is_file() and (kit_dir / ".git").is_dir()  # cloned
    text = outputs_text(nbformat.read(tmp_path / "executed.ipynb", 4))
    assert f"KIT {kit_dir.resolve() / 'evolmm_lib' / '__init__.py'}" in text  # the notebook imported the clone
    assert f"CWD {kit_dir.resolve() / 'notebooks'}" in text  # and worked in its notebooks/ folder
    train = kit_dir / "runs" / "notebooks" / "train"  # run_dir "../runs/notebooks", relative to that folder
    logs = [json.loads(x) for x in (train / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == list(range(1, 7))  # 4 steps, then resumed for 2 more
    assert json.loads((train / "summary.json").read_text())["steps"] == 6
    after = subprocess.run([sys.executable, "-c", "import evolmm_lib; print(evolmm_lib.__file__)"],
                           capture_output=True, text=True, check=True).stdout
    assert after == ours  # the test environment's own kit is untouched
