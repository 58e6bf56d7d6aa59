"""The answer key in one process: every solutions notebook runs, every check passes, and every
stored output is what the run printed.

Both `make check` and `make test` run the solutions notebooks here rather than under nbval, in a
kernel each: each kernel would import PyTorch again (about 5 s a notebook on 2 cores) to prove
what this test proves in one process. A solutions notebook's stored outputs are text its cells
print (the checks' verdicts), so this test compares them as strict nbval would: cell by cell,
stdout with stdout, after the substitutions of tests/nbval_sanitize.cfg; and it fails where a
kernel would have shown more than the stored outputs hold (a value as a cell's last line, a
figure left open, a warning, anything on stderr). A solutions notebook whose outputs are not
plain text is refused with a message, since this test could not compare them.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
import torch
from IPython.core.inputtransformer2 import TransformerManager

from tests.outputs import sanitized

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*_solutions.ipynb"))
CHECK_CALL = re.compile(r"^\s*check\(", re.MULTILINE)
VERDICT = re.compile(r"^(✅ Correct|❌ Not yet) \[")  # what check() prints, and nothing else does


@dataclass
class CellRun:
    """What one code cell showed: its stdout, and whatever else a kernel would have shown."""

    index: int
    stdout: str = ""
    extra: list[str] = field(default_factory=list)  # stderr, warnings, Out[] values, figures


@contextlib.contextmanager
def _global_state_kept():
    """Put back what a notebook may change for the whole process: threads, grad mode, dtype;
    and close any matplotlib figure it left open."""
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
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")


def _kernel_warning_filters() -> None:
    """The filters a fresh kernel shows warnings with: Python's defaults, and DeprecationWarning
    from the notebook's own code (IPython turns that one on for __main__)."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")


def _run_cell(source: str, name: str, namespace: dict, run: CellRun) -> None:
    """Run one cell as a kernel would: the last line, if an expression not ended by ";", is its
    Out[] value."""
    tree = ast.parse(source, name)
    shown = tree.body and isinstance(tree.body[-1], ast.Expr) and not source.rstrip().endswith(";")
    last = tree.body.pop() if shown else None
    out, err = io.StringIO(), io.StringIO()
    with (
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        _kernel_warning_filters()
        exec(compile(tree, name, "exec"), namespace)  # noqa: S102 - the project's own notebooks
        if last is not None:
            value = eval(compile(ast.Expression(last.value), name, "eval"), namespace)  # noqa: S307
            if value is not None:
                run.extra.append(f"an Out[] value: {value!r:.200}")
    run.stdout = out.getvalue()
    if err.getvalue():
        run.extra.append(f"stderr: {err.getvalue()[:500]}")
    run.extra += [f"a warning: {w.category.__name__}: {w.message}" for w in caught]
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and pyplot.get_fignums():  # the inline backend would show them
        run.extra.append(f"{len(pyplot.get_fignums())} open figure(s)")
        pyplot.close("all")


def run_notebook_code(path: Path) -> list[CellRun]:
    """Run every code cell of `path` in one fresh namespace; what each cell showed."""
    notebook = nbformat.read(path, as_version=4)
    namespace: dict = {"__name__": "__main__"}
    transform = TransformerManager().transform_cell  # IPython syntax, as the kernel reads it
    runs = []
    with _global_state_kept():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                runs.append(CellRun(index))
                _run_cell(transform(cell.source), f"{path.name}, cell {index}", namespace, runs[-1])
    return runs


def stored_stdout(cell: nbformat.NotebookNode) -> str:
    """A code cell's stored stdout; AssertionError if it stores anything else."""
    kinds = [
        output.output_type + (f":{output.name}" if output.output_type == "stream" else "")
        for output in cell.get("outputs", [])
    ]
    assert set(kinds) <= {"stream:stdout"}, (
        f"a solutions notebook stores {kinds}: tests/test_answer_key.py compares printed text only. "
        "Print the result instead, or run this notebook under strict nbval (Makefile)."
    )
    return "".join(output.text for output in cell.get("outputs", []))


def test_every_solutions_notebook_is_here():
    assert len(SOLUTIONS) == len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))) - 1


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name[:2])
def test_every_worked_solution_passes_its_check_and_reproduces_its_outputs(path, monkeypatch):
    monkeypatch.chdir(path.parent)  # where Jupyter starts the notebook's kernel
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    calls = sum(len(CHECK_CALL.findall(cell.source)) for cell in code)
    runs = run_notebook_code(path)
    printed = "".join(run.stdout for run in runs)
    verdicts = [line for line in printed.splitlines() if VERDICT.match(line)]
    assert calls >= 2
    assert len(verdicts) == calls, printed
    assert all(line.startswith("✅ Correct") for line in verdicts), printed
    for cell, run in zip(code, runs, strict=True):
        assert not run.extra, f"cell {run.index} showed more than its stored outputs: {run.extra}"
        assert sanitized(run.stdout) == sanitized(stored_stdout(cell)), (
            f"cell {run.index}'s stored output is not what it prints now; run "
            f"`make execute NB={path.relative_to(ROOT)}` and read the diff"
        )


def _notebook(tmp_path: Path, *sources: str) -> Path:
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    path = tmp_path / "99_made_solutions.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_a_wrong_solution_would_show(tmp_path):
    """A wrong answer prints a verdict that is not Correct."""
    path = _notebook(tmp_path, 'from helpers import check\n\ncheck("07.batches", (20, 40))')
    (run,) = run_notebook_code(path)
    verdicts = [line for line in run.stdout.splitlines() if VERDICT.match(line)]
    assert len(verdicts) == 1 and verdicts[0].startswith("❌ Not yet [07.batches]")


def test_what_a_kernel_would_show_beyond_print_is_caught(tmp_path):
    """An Out[] value, a warning, stderr and an open figure each count as an output."""
    path = _notebook(
        tmp_path,
        "x = 1\nx + 1",
        "import warnings\nwarnings.warn('careful', UserWarning)",
        "import sys\nprint('oops', file=sys.stderr)",
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.plot([1, 2]);",
        "y = 2\ny",
    )
    runs = run_notebook_code(path)
    assert [len(run.extra) for run in runs] == [1, 1, 1, 1, 1], [run.extra for run in runs]
    assert "Out[] value: 2" in runs[0].extra[0] and "UserWarning: careful" in runs[1].extra[0]
    assert "oops" in runs[2].extra[0] and "open figure" in runs[3].extra[0]
    none_shown = run_notebook_code(_notebook(tmp_path, "print('a')\nNone", "z = [1]"))
    assert [(run.stdout, run.extra) for run in none_shown] == [("a\n", []), ("", [])]


def test_stored_outputs_are_compared_as_nbval_would(tmp_path):
    """Stored text must equal the printed text after nbval's substitutions; other kinds refused."""
    cell = nbformat.v4.new_code_cell("print(object())")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="<object object at 0x7f00>\n")
    ]
    (run,) = run_notebook_code(_notebook(tmp_path, cell.source))
    assert (
        sanitized(run.stdout) == sanitized(stored_stdout(cell)) == "<object object at <address>>\n"
    )
    cell.outputs[0].text = "something else\n"
    assert sanitized(run.stdout) != sanitized(stored_stdout(cell))
    cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"})]
    with pytest.raises(AssertionError, match="compares printed text only"):
        stored_stdout(cell)
