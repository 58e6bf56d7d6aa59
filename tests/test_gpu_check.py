"""tools/gpu_check.py (`make gpu-check`): its table, its verdicts and its messages, without a GPU."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from tools import gpu_check
from tools.gpu_check import (
    PROBE_MARK,
    Result,
    cuda_note,
    expected_device,
    first_error,
    format_table,
    judge,
    notebook_paths,
    probe_reading,
)

DEVICES = {"07": "cuda", "08": "cuda", "12": "cpu"}


def test_every_notebook_and_solution_is_run_lessons_first():
    paths = notebook_paths()
    names = [p.name for p in paths]
    assert names[0].startswith("00_") and "12_one_process_to_many.ipynb" in names
    solutions = [n for n in names if n.endswith("_solutions.ipynb")]
    assert solutions and names[-len(solutions) :] == solutions


def test_the_expected_device_comes_from_the_table_and_solutions_are_cpu():
    assert expected_device(Path("notebooks/07_training_loop.ipynb"), DEVICES) == "cuda"
    assert expected_device(Path("notebooks/12_one_process_to_many.ipynb"), DEVICES) == "cpu"
    solution = Path("notebooks/solutions/07_training_loop_solutions.ipynb")
    assert expected_device(solution, DEVICES) == "cpu"
    assert expected_device(Path("notebooks/00_setup_check.ipynb"), DEVICES) is None


@pytest.mark.parametrize(
    ("device", "gpu_used", "cuda_here", "verdict"),
    [
        ("cuda", True, True, ""),
        ("cuda", False, True, "allocated no CUDA memory"),
        ("cpu", False, True, ""),
        ("cpu", True, True, "pinned to the CPU"),
        ("cpu", False, False, ""),  # no GPU here: nothing to verify
        (None, True, True, ""),  # not in the table (00): not judged
        ("cuda", None, True, ""),  # probe did not run: the run's own error says why
        ("mps", False, False, ""),
    ],
)
def test_a_run_is_judged_by_where_it_computed(device, gpu_used, cuda_here, verdict):
    found = judge(device, gpu_used, cuda_here)
    assert (verdict in found) if verdict else found == ""


def _executed(*cells: tuple[str, list[dict]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for source, outputs in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.outputs = [nbformat.from_dict(o) for o in outputs]
        nb.cells.append(cell)
    return nb


def _stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def test_the_probe_line_says_whether_the_gpu_was_used():
    used = _executed(("x = 1", []), ("probe", [_stream(f'{PROBE_MARK} {{"cuda_bytes": 512}}\n')]))
    unused = _executed(("probe", [_stream(f'other\n{PROBE_MARK} {{"cuda_bytes": 0}}\n')]))
    assert probe_reading(used) is True
    assert probe_reading(unused) is False
    assert probe_reading(_executed(("probe", []))) is None
    assert probe_reading(nbformat.v4.new_notebook()) is None


def test_the_probe_source_runs_and_prints_its_line(capsys):
    exec(compile(gpu_check.PROBE_SOURCE, "probe", "exec"), {})
    line = capsys.readouterr().out.strip()
    assert line.startswith(PROBE_MARK + " ")
    assert probe_reading(_executed(("probe", [_stream(line + "\n")]))) in (True, False)


def test_the_first_error_names_the_cell_and_the_exception():
    error = {
        "output_type": "error",
        "ename": "AssertionError",
        "evalue": "accuracy 0.5\nmore text",
        "traceback": [],
    }
    later = {**error, "ename": "ValueError", "evalue": "later"}
    nb = _executed(("ok", [_stream("fine\n")]), ("bad", [error]), ("worse", [later]))
    raised = CellExecutionError("traceback", "AssertionError", "accuracy 0.5")
    assert first_error(nb, raised) == "cell 2: AssertionError: accuracy 0.5"
    bare = _executed(("assert False", [{**error, "evalue": ""}]))
    assert first_error(bare, raised) == "cell 1: AssertionError"


def test_an_error_outside_any_cell_is_still_named():
    nb = _executed(("slow", []))
    timeout = CellTimeoutError("A cell timed out while it was being executed, after 600 seconds.")
    assert first_error(nb, timeout).startswith("CellTimeoutError: A cell timed out")
    assert first_error(nb, DeadKernelError("Kernel died")) == "DeadKernelError: Kernel died"
    assert first_error(nb, None) == ""


def test_the_table_has_a_row_per_notebook_and_a_count():
    results = [
        Result("notebooks/07_training_loop.ipynb", True, "cuda", True, "", 12.3),
        Result("notebooks/00_setup_check.ipynb", True, None, False, "", 4.0),
        Result("notebooks/08_x.ipynb", False, "cuda", None, "cell 4: RuntimeError: boom", 7.6),
    ]
    table = format_table(results).splitlines()
    assert table[0].split() == [
        "notebook",
        "result",
        "device",
        "CUDA",
        "used",
        "s",
        "first",
        "error",
    ]
    assert table[1].split() == ["07_training_loop.ipynb", "pass", "cuda", "yes", "12"]
    assert table[2].split() == ["00_setup_check.ipynb", "pass", "-", "no", "4"]
    assert table[3].split()[:5] == ["08_x.ipynb", "FAIL", "cuda", "?", "8"]
    assert table[3].endswith("cell 4: RuntimeError: boom")
    assert table[-1] == "2 of 3 passed"
    columns = {line.index("pass") for line in table[1:3]} | {table[3].index("FAIL")}
    assert len(columns) == 1  # the columns line up


def test_without_cuda_it_says_so_and_why():
    cpu_build = cuda_note(False, None, [], None)
    assert cpu_build.startswith("no CUDA device here") and "CPU-only build" in cpu_build
    assert "the device column says cpu" in cpu_build
    no_gpu = cuda_note(False, "13.0", [], None)
    assert no_gpu.startswith("no CUDA device here") and "nvidia-smi" in no_gpu
    hidden = cuda_note(False, "13.0", [], "")
    assert "CUDA_VISIBLE_DEVICES=''" in hidden
    assert cuda_note(True, "13.0", ["NVIDIA H200"], None) == (
        "CUDA device: NVIDIA H200 (PyTorch built for CUDA 13.0)."
    )


def test_a_path_that_is_not_a_notebook_is_refused(tmp_path, capsys):
    assert gpu_check.main([str(tmp_path / "missing.ipynb")]) == 2
    assert "not a notebook" in capsys.readouterr().err


def test_a_tiny_notebook_runs_to_its_first_error_and_reports_it(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# tiny"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("assert x == 2, 'x is not 2'"),
        nbformat.v4.new_code_cell("print('never runs')"),
    ]
    path = tmp_path / "05_tiny.ipynb"
    nbformat.write(nb, path)
    assert gpu_check.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "no CUDA device here" in out or "CUDA device:" in out
    row = next(line for line in out.splitlines() if line.startswith("05_tiny.ipynb"))
    assert row.split()[:4] == ["05_tiny.ipynb", "FAIL", "cpu", "?"]
    assert row.endswith("cell 3: AssertionError: x is not 2")
    assert out.rstrip().endswith("0 of 1 passed")


def test_the_nccl_run_of_train_ddp_reports_the_scripts_own_message():
    result = gpu_check.run_train_ddp(gpus=1)
    if torch.cuda.is_available():  # a GPU machine: the nccl path must work
        assert result.passed and result.gpu_used, result.error
        return
    assert not result.passed and result.path == "train_ddp, 1 rank(s), nccl"
    assert result.error.startswith("exit code ")
    assert "train_ddp: --backend nccl needs" in result.error  # not torchrun's traceback
