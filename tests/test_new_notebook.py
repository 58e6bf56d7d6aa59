"""`make notebook` (tools/new_notebook.py): a scaffolded notebook passes the project's own rule
tests and strict nbval as it is. Always in a temporary copy of the repository, never here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import new_notebook

ROOT = Path(__file__).resolve().parents[1]
# What the copy leaves out: virtual environments, caches, build output, git's own files.
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis",
    ".ruff_cache", "*.egg-info", ".ipynb_checkpoints",
)  # fmt: skip
# The tests that check notebooks against the collection's rules, run in the copy.
RULE_TESTS = [
    "tests/test_notebook_rules.py",
    "tests/test_docs.py",
    "tests/test_colab.py",
    "tests/test_devices.py",
    "tests/test_reading_time.py",
    "tests/test_guide_beliefs.py",
    "tests/test_figures.py",
    "tests/test_setup_check.py::test_the_device_table_names_each_notebook_by_its_title",
    "tests/browser/test_stored_outputs.py",
    "tests/browser/test_run_all.py::test_every_notebook_with_a_widget_is_run_in_a_browser",
]


def _lessons(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "loop-lab"
    shutil.copytree(ROOT, copy, ignore=LEFT_OUT, symlinks=True)
    return copy


def _run(command: list[str], cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
    # The copy's helpers/ and tools/ come first, for this process and for every kernel it starts.
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    """A root with notebooks 00 and 01 only: enough for the scaffold's refusals."""
    for name in ("00_setup_check.ipynb", "01_first.ipynb"):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {name[:2]} — X")])
        (tmp_path / "notebooks").mkdir(exist_ok=True)
        nbformat.write(nb, tmp_path / "notebooks" / name)
    return tmp_path


def test_an_existing_number_is_refused_with_the_next_free_one(tiny_root):
    with pytest.raises(new_notebook.ScaffoldError, match="notebook 01 exists already") as caught:
        new_notebook.scaffold("01", "again", root=tiny_root)
    assert "never overwrites" in str(caught.value) and "next free number is 02" in str(caught.value)
    assert sorted(p.name for p in (tiny_root / "notebooks").iterdir()) == [
        "00_setup_check.ipynb",
        "01_first.ipynb",
    ]


@pytest.mark.parametrize(
    ("number", "name", "phrase"),
    [
        ("05", "gap", "without gaps"),
        ("2", "x", "two digits"),
        ("02", "Bad-Name", "lowercase name"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(tiny_root, number, name, phrase):
    with pytest.raises(new_notebook.ScaffoldError, match=phrase):
        new_notebook.scaffold(number, name, root=tiny_root)


def test_a_file_that_exists_is_never_overwritten(tiny_root):
    checker = tiny_root / "helpers" / "exercises" / "nb02.py"
    checker.parent.mkdir(parents=True)
    checker.write_text("# someone's work\n")
    with pytest.raises(new_notebook.ScaffoldError, match="nb02.py exists already"):
        new_notebook.scaffold("02", "next_one", root=tiny_root)
    assert checker.read_text() == "# someone's work\n"


def test_the_templates_make_code_and_markdown_cells():
    values = {
        "nn": "14",
        "title": "T",
        "stem": "14_t",
        "prev_nn": "13",
        "prev_title": "P",
        "prev_stem": "13_p",
        "minutes": "5",
    }
    cells = new_notebook.cells("notebook.txt", values)
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# 14 — T\n")
    assert [c.cell_type for c in cells].count("code") == 4
    assert cells[-1].source == "← Previous: [13 — P](13_p.ipynb)"


@pytest.mark.slow
def test_a_scaffolded_notebook_passes_the_rule_tests_and_strict_nbval(tmp_path):
    copy = _copy(tmp_path)
    number = f"{len(_lessons(copy)):02d}"
    stem = f"{number}_demo_topic"
    python = sys.executable
    made = _run([python, "tools/new_notebook.py", number, "demo_topic", "--title", "A demo"], copy)
    assert made.returncode == 0, made.stdout + made.stderr
    again = _run([python, "tools/new_notebook.py", number, "other"], copy)
    assert again.returncode == 1 and f"notebook {number} exists already" in again.stderr
    new = [
        f"notebooks/{stem}.ipynb",
        f"notebooks/solutions/{stem}_solutions.ipynb",
        next(p.relative_to(copy).as_posix() for p in copy.glob("notebooks/00_*.ipynb")),
    ]
    executed = _run([python, "tools/execute.py", *new], copy)
    assert executed.returncode == 0, executed.stdout + executed.stderr
    tests = [*RULE_TESTS, f"tests/test_exercises_{number}.py"]
    nbval = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg"]
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    # 00 was just executed; strict nbval of the two new notebooks proves they reproduce.
    done = _run([*command, *nbval, *tests, *new[:2]], copy)
    assert done.returncode == 0, (
        "the scaffolded copy fails a rule test (if the same test fails in the real tree too, "
        "fix that first):\n" + done.stdout[-6000:] + done.stderr[-2000:]
    )
    assert f"notebooks/{stem}.ipynb" in (copy / "README.md").read_text()
    assert f"## {number} — A demo" in (copy / "docs" / "instructor-guide.md").read_text()
