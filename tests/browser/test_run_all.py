"""Notebooks opened in a real JupyterLab in headless Chromium and run with Run All.

Where each notebook's cells run, and why (a behaviour is proven once, at the cheapest level):

- Strict nbval runs every learner notebook top to bottom in a fresh kernel and compares every
  text output with the stored one (`make check` all of them, `make test` those not run here;
  see below). That proves the cells run without error and every claim's assert holds. The
  solutions notebooks run in one process, their printed outputs compared the same way
  (tests/test_answer_key.py). tests/test_notebook_rules.py proves
  that the stored outputs come from a clean run and hold no error, and test_stored_outputs.py
  (this folder) that every stored image decodes.
- The browser proves what nbval cannot: that JupyterLab's widget manager renders each widget as
  a live view (nbval skips widget views) and that Run All in the front end runs every cell.
  So a notebook runs here when its stored outputs hold a widget view (`browser_notebooks()`):
  00 (a slider that proves widgets work), 07 (the progress bar and the live loss plot), 13
  (ScalerStepExplorer). 05 and 06 are run once, by test_explorers.py, which clicks and slides
  their explorers after the same checks, so they are not run here a second time. Notebooks
  without widgets (01-04, 08-12 and every solutions notebook) show only text and images, which
  nbval, the answer key and the stored-output tests prove; a browser run would prove nothing
  more about them.
- Each notebook run here (and by test_explorers.py) has its outputs compared with the stored
  ones as strict nbval compares them (tests/outputs.py), so `make test`, which runs these tests,
  leaves these notebooks out of its nbval run (`--widget-notebooks-in-browser`, tests/conftest.py)
  and their cells run once; `make check`, which has no browser, runs them under nbval.
- The checks can fail: with the widgets extension's JavaScript refused, the same check sees the
  missing views (`test_a_missing_widget_manager_is_caught`, on the shared server).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.browser.jupyter import (
    KERNEL_IDLE,
    ROOT,
    assert_front_end_shows_everything,
    count_live_widget_views,
    open_and_run_all,
    wait_for_every_cell,
    widget_notebooks,
    widget_outputs_in_model,
)

pytestmark = pytest.mark.browser
# Run, clicked and checked by test_explorers.py.
EXPLORED = {"05_optimizer_step.ipynb", "06_zero_grad_and_accumulation.ipynb"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def browser_notebooks() -> list[Path]:
    """The notebooks this module runs: those whose stored outputs hold a widget view."""
    return [p for p in widget_notebooks() if p.name not in EXPLORED]


BROWSER_NOTEBOOKS = browser_notebooks()


@pytest.mark.parametrize("notebook", BROWSER_NOTEBOOKS, ids=[p.name for p in BROWSER_NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(notebook, lab, lab_server):
    before = _digest(notebook)
    model = open_and_run_all(lab, lab_server, notebook)
    assert_front_end_shows_everything(lab, model, notebook)
    assert _digest(notebook) == before, "the browser run changed the notebook file"


def test_every_notebook_with_a_widget_is_run_in_a_browser():
    """No widget notebook escapes: each is run here or driven by test_explorers.py."""
    assert {p.name for p in widget_notebooks()} == {p.name for p in BROWSER_NOTEBOOKS} | EXPLORED


# The widgets extension's JavaScript, which JupyterLab loads as a federated extension.
WIDGET_MANAGER_JS = "**/lab/extensions/@jupyter-widgets/jupyterlab-manager/**"
# In the open notebook, in the page only: its cells become one cell with this source.
REPLACE_CELLS = """source => {
  const notebook = window.jupyterapp.shell.currentWidget.content.model.sharedModel;
  notebook.transact(() => {
    notebook.deleteCellRange(0, notebook.cells.length);
    notebook.insertCell(0, {cell_type: 'code', source, metadata: {}});
  });
}"""
SLIDER = "import ipywidgets\n\nipywidgets.IntSlider(value=3)"


def test_a_missing_widget_manager_is_caught(lab, lab_server):
    """Without the widgets extension's JavaScript, the same check must fail: it can tell.

    The page runs on the shared server, with the extension's files refused. The server serves
    notebooks/ and nothing is written there: the test opens notebook 00 and, in the page only,
    replaces its cells with one slider cell (autosave is off; the file is checked unchanged).
    """
    refused = []

    def refuse(route):
        refused.append(route.request.url)
        route.abort()

    lab.route(WIDGET_MANAGER_JS, refuse)
    notebook = ROOT / "notebooks" / "00_setup_check.ipynb"
    before = _digest(notebook)
    lab.goto(lab_server.lab_url(notebook))
    lab.wait_for_function(KERNEL_IDLE)
    lab.evaluate(REPLACE_CELLS, SLIDER)
    lab.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    model = wait_for_every_cell(lab)
    # The slider's output is drawn, as its text: no widget manager took it.
    lab.locator(".jp-OutputArea-output", has_text="IntSlider(value=3").wait_for()
    assert refused, "the widgets extension was not requested, so nothing was taken away"
    assert ["".join(cell["source"]) for cell in model["cells"]] == [SLIDER]
    assert widget_outputs_in_model(model) == 1
    assert count_live_widget_views(lab) == 0
    assert _digest(notebook) == before, "the test changed the notebook file"
