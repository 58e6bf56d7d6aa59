"""Fixtures for the book's browser tests: the built book, a static server, one Chromium page.

The book is built once (tools/book.py) when build/book/html is missing or older than what it is
made from; `make test` builds it first. Every page is visited once, in `book_visit`, and the
tests read what that visit saw.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.book.crawl import Visit, crawl
from tests.browser.conftest import browser_type_launch_args, chromium  # noqa: F401
from tests.browser.jupyter import ROOT

HTML = ROOT / "build" / "book" / "html"
SOURCES = ["README.md", "docs/instructor-guide.md", "tools/book.py", "tools/sync_notebooks.py"]


def _newest_source() -> float:
    paths = [ROOT / s for s in SOURCES] + list((ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb"))
    return max(p.stat().st_mtime for p in paths if p.exists())


@pytest.fixture(scope="session")
def book_html() -> Path:
    """The built book's HTML folder, built now if it is missing or out of date."""
    index = HTML / "index.html"
    if not index.exists() or index.stat().st_mtime < _newest_source():
        result = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "book.py")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            pytest.fail(f"tools/book.py failed:\n{result.stdout}\n{result.stderr}")
    return HTML


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def book_url(book_html: Path) -> Iterator[str]:
    """The book served statically on 127.0.0.1, as GitHub Pages would serve it."""
    handler = functools.partial(_QuietHandler, directory=str(book_html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def book_page(browser: Any) -> Iterator[Any]:
    """One Chromium page for every book test (pytest-playwright's browser, the same one the
    JupyterLab tests use in this process); requests off this machine are stubbed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.route("**/*", _stub_outside)
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page
    finally:
        context.close()


# The badges (Colab, Binder) are images from other sites; the tests run offline, so they get a
# small stand-in picture instead of a network error.
STUB_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="80" height="20"></svg>'


def _stub_outside(route: Any) -> None:
    url = route.request.url
    if url.startswith(("file://", "http://127.0.0.1", "data:", "blob:")):
        route.continue_()
    else:
        route.fulfill(status=200, content_type="image/svg+xml", body=STUB_SVG)


@pytest.fixture(scope="session")
def book_visit(book_page: Any, book_url: str, book_html: Path) -> Visit:
    """Every page of the book visited once from the landing page, with what each showed."""
    return crawl(book_page, book_url, book_html)
