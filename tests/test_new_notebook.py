"""`make notebook` (tools/new_notebook.py): a scaffolded notebook passes the project's own rule
tests and strict nbval as it is. Always in a temporary copy of the repository, never here.

The slow test does what `make notebook` does in a copy (scaffold, then tools/execute.py on 00 and
both new notebooks), then runs the rule tests and strict nbval there in a pytest of its own: the
rule tests read the notebooks and helpers/ of the folder they sit in when they are imported, so
they cannot run in this process against the copy. Nothing starts a process it does not need: the
scaffold and tools/execute.py run in this process, the three notebooks execute at once (a kernel
each), strict nbval of the new two starts as soon as they are executed, and the rule tests run
once 00 is too."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from tools import execute, new_notebook

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
    "tests/test_figures.py::test_every_figure_a_notebook_shows_has_alt_text",
    "tests/test_setup_check.py::test_the_device_table_names_each_notebook_by_its_title",
    "tests/browser/test_stored_outputs.py",
    "tests/browser/test_run_all.py::test_every_notebook_with_a_widget_is_run_in_a_browser",
    "tests/test_checks.py::test_every_exercise_id_is_nn_dot_name_and_has_a_title",
]
# Tests the checklist in docs/authoring-notebooks.md names that are not rules to run on the copy.
NOT_RULE_TESTS = {
    "test_answer_key": "it runs the real tree's solutions; the new one is under strict nbval here",
    "test_exercises_NN": "the new notebook's own test: the scaffold test runs it",
    "test_new_notebook": "this file",
}
# pytest in the copy without the plugins its tests do not use (each costs a second to load).
PYTEST_IN_COPY = [
    "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:playwright",
    "-p", "no:anyio", "-p", "no:hypothesispytest",
]  # fmt: skip
GUIDE = "docs/instructor-guide.md"


def _lessons(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "loop-lab"
    shutil.copytree(ROOT, copy, ignore=LEFT_OUT, symlinks=True)
    return copy


def _run(command: list[str], cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
    # PYTHONPATH (set by the test) puts the copy's helpers/ and tools/ first here and in kernels.
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


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


def test_every_rule_the_checklist_names_is_run_on_the_scaffolded_copy():
    """Each test docs/authoring-notebooks.md names in "Adding notebook NN" is in RULE_TESTS."""
    text = (ROOT / "docs" / "authoring-notebooks.md").read_text(encoding="utf-8")
    assert "\n## Adding notebook NN\n" in text, "docs/authoring-notebooks.md lost its checklist"
    checklist = text.split("\n## Adding notebook NN\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"\btest_\w+", checklist)) - set(NOT_RULE_TESTS)
    assert len(named) > 10, "the checklist names fewer tests than it did: read it"
    for name in sorted(named):
        where = []
        for entry in RULE_TESTS:
            file, _, function = entry.partition("::")
            defined = re.search(rf"^def {name}\w*\(", (ROOT / file).read_text(), re.M)
            if Path(file).stem == name or (defined and (not function or function.startswith(name))):
                where.append(entry)  # the module (test_devices), or a test in one run here
        assert where, f"the checklist names {name}, which RULE_TESTS does not run on the copy"


@pytest.mark.slow
def test_a_scaffolded_notebook_passes_the_rule_tests_and_strict_nbval(
    tmp_path, monkeypatch, capsys
):
    copy = _copy(tmp_path)
    lessons = _lessons(copy)
    number, previous = f"{len(lessons):02d}", lessons[-1]
    stem = f"{number}_demo_topic"
    assert new_notebook.main([number, "demo_topic", "--title", "A demo", "--root", str(copy)]) == 0
    written = capsys.readouterr().out
    assert new_notebook.main([number, "other", "--root", str(copy)]) == 1
    assert f"notebook {number} exists already" in capsys.readouterr().err
    setup_check = next(copy.glob("notebooks/00_*.ipynb"))
    new = [f"notebooks/{stem}.ipynb", f"notebooks/solutions/{stem}_solutions.ipynb"]
    python = sys.executable
    nbval = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg"]
    nbval += ["--nbval-kernel-startup-timeout", str(execute.KERNEL_STARTUP_S)]  # as make check's
    monkeypatch.setenv("PYTHONPATH", str(copy))  # the copy's helpers/ first in every kernel
    with ThreadPoolExecutor(max_workers=3) as pool:
        # What make notebook runs next: tools/execute.py (a clean kernel each) on 00 and both
        # new notebooks, here all three at once.
        setup_run = pool.submit(execute.execute, setup_check)
        list(pool.map(execute.execute, [copy / path for path in new]))
        # Strict nbval of the new notebooks (their outputs reproduce) starts beside 00's run.
        nbval_run = pool.submit(_run, [python, *PYTEST_IN_COPY, *nbval, *new], copy)
        setup_run.result()
        # Then the rule tests and the new exercise test, on the copy's files as executed.
        tests = [*RULE_TESTS, f"tests/test_exercises_{number}.py"]
        rules_run = pool.submit(_run, [python, *PYTEST_IN_COPY, "-p", "no:nbval", *tests], copy)

    made = [*new, f"helpers/exercises/nb{number}.py", f"tests/test_exercises_{number}.py"]
    edited = [previous, setup_check, copy / "helpers/environment.py", copy / "README.md"]
    for path in [*made, *(p.relative_to(copy).as_posix() for p in edited), GUIDE]:
        assert (copy / path).exists() and f"  {path}\n" in written, (
            f"{path} not written:\n{written}"
        )
    assert f"({stem}.ipynb) →" in nbformat.read(previous, as_version=4).cells[-1].source
    assert f'"{number}": ("cpu", ' in (copy / "helpers" / "environment.py").read_text()
    cell = next(c for c in nbformat.read(setup_check, as_version=4).cells if "TITLES" in c.source)
    shown = "".join(o.get("data", {}).get("text/markdown", "") for o in cell.outputs)
    assert f"| {number} | A demo | `cpu` | pinned |" in shown, "00's device table, as executed"
    assert f"notebooks/{stem}.ipynb" in (copy / "README.md").read_text()
    assert f"## {number} — A demo" in (copy / GUIDE).read_text()
    for run in (nbval_run.result(), rules_run.result()):
        assert run.returncode == 0, (
            "the scaffolded copy fails a rule test or strict nbval (if the same test fails in "
            "the real tree too, fix that first):\n" + run.stdout[-6000:] + run.stderr[-2000:]
        )
