"""Fixtures for the book's browser tests: the built book, a static server, one Chromium page.

The book is built once (tools/book.py) when build/book/html is missing or older than what it is
made from; `make test` builds it first. Every page is visited once, in `book_visit`, and the
tests read what that visit saw.
"""

from __future__ import annotations

import base64
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
    JupyterLab tests use in this process); requests to other sites get a stand-in picture."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        _stub_outside(context.new_cdp_session(page))
        page.set_default_timeout(60_000)
        yield page
    finally:
        context.close()


# The badges (Colab, Binder) are https:// images from other sites, the book's only requests off
# this machine; the tests run offline, so they get a small stand-in picture instead of a network
# error. So does the browser's own request for /favicon.ico (the book has no icon, and the
# request is the browser's, not the book's). Chromium's request interception (DevTools' Fetch
# domain) answers these addresses only. Playwright's `route` could do the same, but it turns the
# browser's cache off for every request: then every page downloads and compiles MathJax and the
# theme's scripts (about 3 MB) again, more than half a second a page on a busy 2-core machine.
STUBBED = ["https://*", "http://127.0.0.1:*/favicon.ico"]
STUB_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="80" height="20"></svg>'


def _stub_outside(cdp: Any) -> None:
    body = base64.b64encode(STUB_SVG.encode()).decode()
    headers = [{"name": "Content-Type", "value": "image/svg+xml"}]

    def fulfill(event: dict) -> None:
        request = {"requestId": event["requestId"], "responseCode": 200, "body": body}
        cdp.send("Fetch.fulfillRequest", {**request, "responseHeaders": headers})

    cdp.on("Fetch.requestPaused", fulfill)
    cdp.send("Fetch.enable", {"patterns": [{"urlPattern": p} for p in STUBBED]})


@pytest.fixture(scope="session")
def book_visit(book_page: Any, book_url: str, book_html: Path) -> Visit:
    """Every page of the book visited once from the landing page, with what each showed."""
    return crawl(book_page, book_url, book_html)
