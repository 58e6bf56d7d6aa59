"""Fixtures for the browser tests: Chromium through pytest-playwright, one JupyterLab server.

pytest-playwright gives the browser (one per test process). What is ours: the Chromium binary
(Debian's, since `playwright install` cannot download here), its flags, the shared JupyterLab
server (`lab_server`, started once per test process) and one browser context for its pages
(`lab_context`), so that the browser's cache keeps JupyterLab's scripts from test to test.
`lab` hands a test a fresh page on that server and shuts down every kernel the test started,
so the next notebook opens in a fresh kernel.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.jupyter import CHROMIUM_FLAGS, WAIT_MS, Server, find_chromium, jupyter_server


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium binary the browser tests drive."""
    path = find_chromium()
    if path is None:
        pytest.fail(
            "No Chromium found for the browser tests. `make test` installs it "
            "(tools/ensure_chromium.sh); or set LOOPLAB_CHROMIUM to a Chromium/Chrome binary."
        )
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict, chromium: str) -> dict:
    """pytest-playwright's launch options, with this machine's Chromium and our flags."""
    return {
        **browser_type_launch_args,
        "executable_path": chromium,
        "headless": browser_type_launch_args.get("headless", True),
        "args": CHROMIUM_FLAGS,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """A tall page, so that a notebook's outputs fit without scrolling in screenshots."""
    return {**browser_context_args, "viewport": {"width": 1280, "height": 1600}}


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One JupyterLab on notebooks/ for every browser test in this test process."""
    with jupyter_server(tmp_path_factory.mktemp("jupyterlab")) as server:
        yield server


@pytest.fixture(scope="session")
def lab_context(browser: Any, browser_context_args: dict) -> Iterator[Any]:
    """One browser context for every JupyterLab page of this test process: its HTTP cache keeps
    JupyterLab's scripts (about 10 MB, the same for every page) compiled from page to page.
    A fresh context per test would load and compile them again for every notebook: about 5 s
    of a busy 2-core machine each time. Nothing else carries over: each test opens a new page
    in a workspace of its own, and JupyterLab keeps its settings and workspaces on the server."""
    context = browser.new_context(**browser_context_args)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def lab(lab_server: Server, lab_context: Any) -> Iterator[Any]:
    """A fresh page on the shared server; afterwards, every kernel the test started is gone."""
    lab_server.shut_down_kernels()  # a kernel left by an earlier, failed teardown
    page = lab_context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        yield page
    finally:
        page.close()
        lab_server.shut_down_kernels()
