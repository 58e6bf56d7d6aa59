"""Colab has lagged behind on ipywidgets 8: every explorer must also work on 7.7.

`make test` builds .venv-ipywidgets7, a venv that puts ipywidgets 7.7 in front of .venv's
packages; this test drives every explorer there, from Python, as clicks and slider moves would.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv-ipywidgets7" / "bin" / "python"


def test_every_explorer_works_on_ipywidgets_7_7():
    if not PYTHON.exists():
        pytest.fail(
            "No .venv-ipywidgets7: run `make test`, which builds it (make .venv-ipywidgets7/.installed)."
        )
    done = subprocess.run(
        [str(PYTHON), str(ROOT / "tests" / "ipywidgets7_driver.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ipywidgets 7.7" in done.stdout and "every explorer works" in done.stdout
