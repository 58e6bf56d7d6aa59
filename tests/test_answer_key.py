"""The answer key in one process: every solutions notebook's code runs, and every check passes.

make check runs this instead of strict nbval over notebooks/solutions/: it proves the same thing
that matters in the inner loop (each worked solution still passes its checker) without a kernel
per notebook, each importing PyTorch again. make test deselects it (marker `answer_key`) and
runs the solutions under strict nbval, which also compares their stored outputs.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import nbformat
import pytest
import torch
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*_solutions.ipynb"))
CHECK_CALL = re.compile(r"^\s*check\(", re.MULTILINE)
VERDICT = re.compile(r"^(✅ Correct|❌ Not yet) \[")  # what check() prints, and nothing else does

pytestmark = pytest.mark.answer_key


@contextlib.contextmanager
def _global_torch_state():
    """Put back what a notebook may change for the whole process: threads, grad mode, dtype."""
    threads, grad, dtype = (
        torch.get_num_threads(),
        torch.is_grad_enabled(),
        torch.get_default_dtype(),
    )
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)


def run_notebook_code(path: Path) -> str:
    """Run every code cell of `path` in one fresh namespace; return what it printed."""
    notebook = nbformat.read(path, as_version=4)
    namespace: dict = {"__name__": "__main__"}
    transform = TransformerManager().transform_cell  # IPython syntax, as the kernel reads it
    out = io.StringIO()
    with _global_torch_state(), contextlib.redirect_stdout(out):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                code = compile(transform(cell.source), f"{path.name}, cell {index}", "exec")
                exec(code, namespace)  # noqa: S102 - the project's own notebooks
    return out.getvalue()


def test_every_solutions_notebook_is_here():
    assert len(SOLUTIONS) == len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))) - 1


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name[:2])
def test_every_worked_solution_passes_its_check(path, monkeypatch):
    monkeypatch.chdir(path.parent)  # where Jupyter starts the notebook's kernel
    calls = sum(
        len(CHECK_CALL.findall(cell.source))
        for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "code"
    )
    printed = run_notebook_code(path)
    verdicts = [line for line in printed.splitlines() if VERDICT.match(line)]
    assert calls >= 2
    assert len(verdicts) == calls, printed
    assert all(line.startswith("✅ Correct") for line in verdicts), printed


def test_a_wrong_solution_would_show(tmp_path):
    """The test above can fail: a wrong answer prints a verdict that is not Correct."""
    wrong = tmp_path / "99_wrong_solutions.ipynb"
    cell = nbformat.v4.new_code_cell('from helpers import check\n\ncheck("07.batches", (20, 40))')
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), wrong)
    verdicts = [line for line in run_notebook_code(wrong).splitlines() if VERDICT.match(line)]
    assert len(verdicts) == 1 and verdicts[0].startswith("❌ Not yet [07.batches]")
