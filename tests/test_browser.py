"""End to end in a real browser: JupyterLab in headless Chromium runs every notebook with Run All.

Chromium is Debian's ``chromium`` package (``make test`` installs it when missing and running as root;
playwright's own browser download is not used). JupyterLab starts on a free loopback port with a token
and serves a copy of ``notebooks/`` in which papermill's parameter injection sets small CPU parameters
(each notebook's own cells are unchanged). For each notebook: open it, Run All, wait until the kernel is
idle, save, and check the saved outputs: every code cell ran, no error output, and at least one figure
where the notebook plots (also rendered in the page). Screenshots go to ``runs/browser/screenshots/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from evolmm_lib.notebook_chain import chain

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "runs" / "browser"

SMALL = {  # a few CPU-seconds each; the real notebooks, small parameters
    "01": {"max_new_tokens": 8},
    "02": {"num_images": 3, "max_new_tokens": 24},
    "03": {"num_questions": 2, "max_new_tokens": 12},
    "04": {"steps": 4, "num_solver_samples": 3, "max_new_tokens": 12},
    "05": {"limit": 2, "benchmarks": ["chartqa"], "world_test_items": 4, "world_samples": 2, "max_new_tokens": 8},
    "06": {"steps": 2, "eval_every": 2, "n_test": 10, "n_validation": 6, "arms": ["continuous", "none"]},
}

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]
ACTIVE = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook tab in front


def chromium() -> str:
    """Debian's chromium, installed here when missing and allowed (root); else skip."""
    path = shutil.which("chromium")
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False, capture_output=True)
        path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab():
    """A JupyterLab server on a copy of the notebooks with small parameters injected; yields (url, token, root)."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    shutil.rmtree(RUN, ignore_errors=True)
    books = RUN / "notebooks"
    books.mkdir(parents=True)
    for book in chain():
        nb = load_notebook_node(str(book))
        nb = parameterize_notebook(nb, {"run_dir": str(RUN / "out"), **SMALL[book.name[:2]]})
        nbformat.write(nb, books / book.name)
    settings = RUN / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell in the DOM (no virtual scrolling), so the page shows what ran
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    news = RUN / "lab-settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))  # no news toast
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
               JUPYTERLAB_SETTINGS_DIR=str(RUN / "lab-settings"), JUPYTER_RUNTIME_DIR=str(RUN / "runtime"))
    log = open(RUN / "jupyterlab.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                               f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
                               f"--ServerApp.root_dir={RUN}", "--ServerApp.port_retries=0", "--allow-root"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"jupyter lab exited: {(RUN / 'jupyterlab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url, token, RUN
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield pg
        browser.close()


def _idle_and_done(page) -> bool:
    """No cell queued or running ('[*]') and the kernel idle."""
    state = page.evaluate("""(active) => ({
        running: [...document.querySelectorAll(active + ' .jp-InputPrompt')].some(e => e.textContent.includes('*')),
        status: document.querySelector(active + ' .jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') || '',
    })""", ACTIVE)
    return not state["running"] and state["status"] == "idle"


def run_all(page, url: str, token: str, name: str, timeout_s: float = 600) -> float:
    page.goto(f"{url}/lab/tree/notebooks/{name}?token={token}")
    page.wait_for_selector(f"{ACTIVE} .jp-Cell", timeout=120_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").first.wait_for(timeout=120_000)  # the kernel is up
    t0 = time.time()
    for _ in range(3):  # Run All; once more if the kernel was not listening yet
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
        try:
            page.wait_for_function("(active) => [...document.querySelectorAll(active + ' .jp-InputPrompt')]"
                                   ".some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))", arg=ACTIVE, timeout=30_000)
            break
        except Exception:
            page.screenshot(path=str(RUN / f"run-all-retry-{name[:2]}.png"))
    calm = 0
    while calm < 3:  # idle for three polls in a row: Run All has finished (or stopped at an error)
        if time.time() - t0 > timeout_s:
            raise AssertionError(f"{name}: still running after {timeout_s} s")
        calm = calm + 1 if _idle_and_done(page) else 0
        time.sleep(1)
    return time.time() - t0


def save(page, path: Path) -> nbformat.NotebookNode:
    """Save the open notebook and read it back; Ctrl+S again when the file did not change (the keystroke can
    land before the notebook has focus), and fail rather than read back the unsaved file."""
    before = path.stat().st_mtime
    for _ in range(3):
        page.locator(f"{ACTIVE} .jp-Notebook").click(position={"x": 5, "y": 5})
        page.keyboard.press("Control+s")
        for _ in range(40):
            if path.stat().st_mtime != before:
                time.sleep(0.5)
                return nbformat.read(path, 4)
            time.sleep(0.5)
    page.screenshot(path=str(RUN / f"save-failed-{path.name[:2]}.png"))
    raise AssertionError(f"{path.name}: Ctrl+S did not save the notebook (3 tries, 20 s each)")


@pytest.mark.parametrize("name", [b.name for b in chain()], ids=lambda n: n[:2])
def test_notebook_runs_in_jupyterlab(lab, page, name):
    url, token, root = lab
    seconds = run_all(page, url, token, name)
    nb = save(page, root / "notebooks" / name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [f"{o.ename}: {o.evalue}" for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{name}: {errors}"
    assert all(c.get("execution_count") for c in code), f"{name}: Run All stopped before the last cell"
    figures = sum("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))
    rendered = page.locator(f"{ACTIVE} .jp-OutputArea-output img")
    assert figures >= 1 and rendered.count() >= 1, f"{name}: no figure rendered"
    rendered.first.scroll_into_view_if_needed()
    time.sleep(0.3)
    (root / "screenshots").mkdir(exist_ok=True)
    page.screenshot(path=str(root / "screenshots" / f"{name[:-6]}.png"))
    print(f"{name}: Run All in {seconds:.1f} s, {figures} figures")
