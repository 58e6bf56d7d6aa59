"""A JupyterLab server for the browser tests, and what the tests check in its pages.

One server serves every browser test of a test process (tests/browser/conftest.py starts it
once); each test opens its notebook in a fresh Chromium context (pytest-playwright) and in a
workspace of its own, and every kernel it started is shut down after it, so each notebook gets
a fresh kernel and a fresh page. The server binds 127.0.0.1 only, has autosave, news and update
checks turned off, and is stopped with every kernel it started, even when a test fails.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Every wait in a browser test: generous, so that a loaded 2-core machine (load 5-10, another
# test run beside this one) passes; a wait ends as soon as its condition holds.
WAIT_MS = 300_000
SERVER_START_S = 300
_WORKSPACES = itertools.count()


def find_chromium() -> str | None:
    """Return the path of a Chromium/Chrome binary, or None."""
    candidates = [
        os.environ.get("LOOPLAB_CHROMIUM", ""),
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running JupyterLab: its base URL, token, process and the folder it serves."""

    url: str
    token: str
    process: subprocess.Popen
    root: Path

    def lab_url(self, notebook: Path) -> str:
        """The address that opens `notebook` in a new, empty workspace (no tab restored)."""
        relative = notebook.resolve().relative_to(self.root.resolve()).as_posix()
        workspace = f"test-{next(_WORKSPACES)}-{secrets.token_hex(4)}"
        return f"{self.url}/lab/workspaces/{workspace}/tree/{relative}?token={self.token}"

    def _api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.url}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernels(self) -> list[dict]:
        """The kernels running on this server."""
        return self._api("GET", "kernels")

    def shut_down_kernels(self) -> None:
        """End every session and kernel, so that the next notebook opened gets a fresh kernel."""
        for session in self._api("GET", "sessions"):
            self._api("DELETE", f"sessions/{session['id']}")
        for kernel in self._api("GET", "kernels"):
            self._api("DELETE", f"kernels/{kernel['id']}")


@contextmanager
def jupyter_server(tmp: Path):
    """Start JupyterLab on notebooks/ in a private config; stop it and its kernels afterwards."""
    root = ROOT / "notebooks"
    dirs = {name: tmp / name for name in ("config", "runtime", "settings", "workspaces")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    for name, values in SETTINGS.items():
        path = dirs["settings"] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        "--LabApp.expose_app_in_browser=True",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        # A test's kernels are stopped at once when it ends (SIGTERM right after the shutdown
        # request), not given up to 5 s to tear PyTorch down, which costs the busy machine 1.5-3 s
        # of CPU a kernel and proves nothing.
        "--KernelManager.shutdown_wait_time=0",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = (tmp / "server.log").open("w")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = Server(f"http://127.0.0.1:{port}", token, process, root)
    try:
        _wait_for_status(server, tmp / "server.log")
        yield server
    finally:
        _stop(process)
        log.close()


def _wait_for_status(server: Server, log: Path, timeout: float = SERVER_START_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited early:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(
                f"{server.url}/api/status?token={server.token}", timeout=2
            ) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"JupyterLab did not answer /api/status in {timeout} s:\n{log.read_text()[-2000:]}"
    )


def _stop(process: subprocess.Popen) -> None:
    """Stop the server's whole process group (the server and every kernel it started)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


KERNEL_IDLE = """() => {
  const app = window.jupyterapp;
  const widget = app && app.shell.currentWidget;
  const kernel = widget && widget.sessionContext && widget.sessionContext.session
                 && widget.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle';
}"""


def open_and_run_all(page: Any, server: Server, notebook: Path, timeout_ms: int = WAIT_MS) -> dict:
    """Open a notebook, wait for its kernel, Run All, and return the notebook model as JSON."""
    page.goto(server.lab_url(notebook))
    page.wait_for_function(KERNEL_IDLE, timeout=timeout_ms)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')", None)
    # Run All can resolve before the last cell has run: wait for all.
    return wait_for_every_cell(page, timeout_ms)


LIVE_VIEWS = """[...document.querySelectorAll('.jp-OutputArea-output')]
    .filter(el => el.classList.contains('jupyter-widgets') || el.querySelector('.jupyter-widgets'))
    .length"""


def count_live_widget_views(page: Any) -> int:
    """Count output areas in the page that hold a live (rendered) ipywidgets view."""
    return page.evaluate(f"() => {LIVE_VIEWS}")


def wait_for_widget_views(page: Any, expected: int, timeout_ms: int = WAIT_MS) -> int:
    """Wait (up to timeout_ms) until `expected` widget views are live; return how many are."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(f"() => {LIVE_VIEWS} >= {expected}", timeout=timeout_ms)
    except PlaywrightTimeout:
        pass
    return count_live_widget_views(page)


def broken_images_in_page(page: Any) -> int:
    """Count rendered <img> outputs that failed to decode in the browser."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.jp-OutputArea-output img')]
                 .filter(img => !(img.complete && img.naturalWidth > 0)).length"""
    )


def widget_notebooks() -> list[Path]:
    """The notebooks (solutions included) whose stored outputs hold a widget view: the browser
    tests run each of them with Run All and compare its outputs (test_run_all.py says where)."""
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    paths += sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if widget_outputs_in_model(json.loads(p.read_text(encoding="utf-8")))]


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else (value or "")


def problems_in_model(model: dict) -> list[str]:
    """What went wrong in a run, read from the notebook model: unrun cells, errors, bad PNGs."""
    from PIL import Image

    problems = []
    for index, cell in enumerate(model["cells"]):
        if cell["cell_type"] != "code" or not _text(cell["source"]).strip():
            continue
        first_line = _text(cell["source"]).strip().splitlines()[0][:70]
        if cell.get("execution_count") is None:
            problems.append(f"cell {index} did not run: {first_line}")
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                problems.append(
                    f"cell {index} raised {output.get('ename')}: {output.get('evalue', '')[:120]}"
                )
            png = output.get("data", {}).get("image/png")
            if png:
                try:
                    Image.open(io.BytesIO(base64.b64decode(_text(png)))).verify()
                except Exception as error:
                    problems.append(f"cell {index}: a PNG output does not decode ({error})")
    return problems


def widget_outputs_in_model(model: dict) -> int:
    """Count outputs in the model that are widget views."""
    return sum(
        1
        for cell in model["cells"]
        if cell["cell_type"] == "code"
        for output in cell.get("outputs", [])
        if WIDGET_VIEW in output.get("data", {})
    )


EVERY_CELL_RAN = """() => {
  const widget = window.jupyterapp.shell.currentWidget;
  const kernel = widget.sessionContext.session && widget.sessionContext.session.kernel;
  if (!kernel || kernel.status !== 'idle') return false;
  const cells = widget.content.model.toJSON().cells;
  // An error stops Run All: later cells never run, so stop waiting and report it.
  const failed = cells.some(cell => cell.cell_type === 'code'
    && (cell.outputs || []).some(output => output.output_type === 'error'));
  return failed || cells.every(cell => cell.cell_type !== 'code'
    || ![].concat(cell.source).join('').trim() || cell.execution_count !== null);
}"""


def wait_for_every_cell(page: Any, timeout_ms: int = WAIT_MS) -> dict:
    """Wait until the kernel is idle and every non-empty code cell has run; return the model.

    `notebook:run-all-cells` can resolve before the kernel has run every queued cell; Run All
    clears each queued cell's execution count, so a count on every code cell means they all ran.
    """
    page.wait_for_function(EVERY_CELL_RAN, timeout=timeout_ms, polling=200)
    return page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.toJSON()")


def assert_front_end_shows_everything(page: Any, model: dict, notebook: Path) -> None:
    """Every cell ran without error and shows the outputs stored in `notebook` (compared as
    strict nbval compares them), every widget rendered live, every image decoded. A full-page
    screenshot goes to build/screenshots/NN_name.png."""
    import nbformat

    from tests.outputs import as_notebook, output_differences

    screenshot = SCREENSHOTS / f"{notebook.stem}.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    assert problems_in_model(model) == []
    differences = output_differences(nbformat.read(notebook, as_version=4), as_notebook(model))
    assert not differences, (
        f"Run All in JupyterLab shows other outputs than {notebook.name} stores (make test leaves "
        "this notebook's strict nbval run to this comparison):\n" + "\n".join(differences)
    )
    expected_views = widget_outputs_in_model(model)
    assert wait_for_widget_views(page, expected_views) == expected_views, (
        "a widget did not render live"
    )
    assert broken_images_in_page(page) == 0, "an image output failed to decode in the browser"
    assert page.locator(".jp-OutputArea-output", has_text="Error displaying widget").count() == 0
