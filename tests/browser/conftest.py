"""Fixtures for the browser tests: a Chromium binary, or a clear failure saying what to install."""

from __future__ import annotations

import pytest

from tests.browser.jupyter import find_chromium


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
