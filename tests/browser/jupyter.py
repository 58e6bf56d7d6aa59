"""A JupyterLab server and a headless Chromium for the browser tests, and what they check.

The server is fresh for every notebook, binds 127.0.0.1 only, has autosave, news and update
checks turned off, and is stopped with every kernel it started, even when a test fails.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import shutil
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
    """A running JupyterLab: its base URL and token."""

    url: str
    token: str
    process: subprocess.Popen

    def lab_url(self, notebook: Path) -> str:
        relative = notebook.resolve().relative_to(ROOT / "notebooks")
        return f"{self.url}/lab/tree/{relative.as_posix()}?token={self.token}"


@contextmanager
def jupyter_server(tmp: Path, disabled_extensions: tuple[str, ...] = ()):
    """Start JupyterLab on notebooks/ in a private config; stop it and its kernels afterwards."""
    dirs = {name: tmp / name for name in ("config", "runtime", "settings", "workspaces")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    for name, values in SETTINGS.items():
        path = dirs["settings"] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    if disabled_extensions:
        labconfig = dirs["config"] / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {name: True for name in disabled_extensions}})
        )
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
        f"--ServerApp.root_dir={ROOT / 'notebooks'}",
        "--ServerApp.open_browser=False",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = (tmp / "server.log").open("w")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = Server(f"http://127.0.0.1:{port}", token, process)
    try:
        _wait_for_status(server, tmp / "server.log")
        yield server
    finally:
        _stop(process)
        log.close()


def _wait_for_status(server: Server, log: Path, timeout: float = 60) -> None:
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


@contextmanager
def chromium_page(tmp: Path, executable: str):
    """A headless Chromium page with a fresh profile."""
    from playwright.sync_api import sync_playwright

    profile = tmp / "chromium-profile"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 1600},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


KERNEL_IDLE = """() => {
  const app = window.jupyterapp;
  const widget = app && app.shell.currentWidget;
  const kernel = widget && widget.sessionContext && widget.sessionContext.session
                 && widget.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle';
}"""


def open_and_run_all(page: Any, server: Server, notebook: Path, timeout_ms: int = 120_000) -> dict:
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


def wait_for_widget_views(page: Any, expected: int, timeout_ms: int = 30_000) -> int:
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


def wait_for_every_cell(page: Any, timeout_ms: int = 120_000) -> dict:
    """Wait until the kernel is idle and every non-empty code cell has run; return the model.

    `notebook:run-all-cells` can resolve before the kernel has run every queued cell; Run All
    clears each queued cell's execution count, so a count on every code cell means they all ran.
    """
    page.wait_for_function(EVERY_CELL_RAN, timeout=timeout_ms, polling=200)
    return page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.toJSON()")
