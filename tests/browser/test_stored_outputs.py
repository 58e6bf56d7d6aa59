"""Every image stored in a notebook decodes: the proof, without a browser, for the notebooks
that test_run_all.py does not open (strict nbval compares text outputs but skips image/png)."""

from __future__ import annotations

import json

import pytest

from tests.browser.jupyter import ROOT, problems_in_model

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
    (ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb")
)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_stored_image_decodes_and_every_cell_ran(notebook):
    assert problems_in_model(json.loads(notebook.read_text(encoding="utf-8"))) == []
