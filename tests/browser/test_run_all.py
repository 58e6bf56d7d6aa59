"""Every notebook, opened in a real JupyterLab in headless Chromium and run with Run All."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.browser.jupyter import (
    ROOT,
    broken_images_in_page,
    chromium_page,
    count_live_widget_views,
    jupyter_server,
    open_and_run_all,
    problems_in_model,
    wait_for_widget_views,
    widget_outputs_in_model,
)

pytestmark = pytest.mark.browser
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
    (ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb")
)
SCREENSHOTS = ROOT / "build" / "screenshots"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(notebook, chromium, tmp_path):
    before = _digest(notebook)
    with jupyter_server(tmp_path) as server, chromium_page(tmp_path, chromium) as page:
        model = open_and_run_all(page, server, notebook)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{notebook.stem}.png"), full_page=True)
        assert problems_in_model(model) == []
        expected_views = widget_outputs_in_model(model)
        wait_for_widget_views(page, expected_views)
        assert count_live_widget_views(page) == expected_views, "a widget did not render live"
        assert broken_images_in_page(page) == 0, "an image output failed to decode in the browser"
        assert (
            page.locator(".jp-OutputArea-output", has_text="Error displaying widget").count() == 0
        )
    assert _digest(notebook) == before, "the browser run changed the notebook file"


def test_a_missing_widget_manager_is_caught(chromium, tmp_path):
    """With the widgets extension disabled, the same check must fail: it can tell."""
    notebook = ROOT / "notebooks" / "00_setup_check.ipynb"
    with (
        jupyter_server(
            tmp_path, disabled_extensions=("@jupyter-widgets/jupyterlab-manager",)
        ) as server,
        chromium_page(tmp_path, chromium) as page,
    ):
        model = open_and_run_all(page, server, notebook)
        assert widget_outputs_in_model(model) >= 1
        assert count_live_widget_views(page) < widget_outputs_in_model(model)
