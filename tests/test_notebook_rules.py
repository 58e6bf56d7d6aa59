"""The rules every notebook follows (docs/authoring-notebooks.md), checked on the stored files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers.checks import exercise_ids

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*_solutions.ipynb"))
ALL = NOTEBOOKS + SOLUTIONS
MACHINE_DETAIL = re.compile(
    r"(/tmp/|/root/|/home/|/work/|/usr/|/opt/|/[\w.-]+/site-packages|0x[0-9a-f]{6,}|\d+(\.\d+)? ?(ms|µs)\b|it/s)"
)
CHECK_CALL = re.compile(r"""check\(\s*["']([^"']+)["']""")


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _text_outputs(cell: dict) -> str:
    parts = []
    for output in cell.get("outputs", []):
        text = output.get("text", "")
        parts.append("".join(text) if isinstance(text, list) else text)
        plain = output.get("data", {}).get("text/plain", "")
        parts.append("".join(plain) if isinstance(plain, list) else plain)
    return "".join(parts)


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code" and _source(c).strip()]


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def test_there_are_notebooks_numbered_from_00_without_gaps():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers, "no notebooks found"
    assert numbers == list(range(len(numbers))), numbers


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_stored_outputs_come_from_a_clean_run(path):
    nb = _load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    counts = [c.get("execution_count") for c in _code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), (
        f"run `make execute NB={path.relative_to(ROOT)}`"
    )
    for cell in _code_cells(nb):
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", (
                f"a stored error stops Run All in some front ends: {_source(cell)[:80]}"
            )
        match = MACHINE_DETAIL.search(_text_outputs(cell))
        assert match is None, (
            f"machine path, address or timing {match.group(0)!r} in the output of: {_source(cell)[:80]}"
        )
    assert "widgets" not in nb["metadata"], "stored widget state: run `make execute`"


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_no_cell_raises_on_purpose(path):
    # Colab's Run all is not known to honour the tag; show errors with helpers.expect_error.
    for cell in _load(path)["cells"]:
        assert "raises-exception" not in cell.get("metadata", {}).get("tags", []), (
            f"use `with expect_error(...)` instead of a raises-exception cell: {_source(cell)[:80]}"
        )


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_no_clear_output_and_no_output_widgets(path):
    for cell in _code_cells(_load(path)):
        source = _source(cell)
        assert "clear_output" not in source
        assert "widgets.Output(" not in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_header_says_what_and_how_long(path):
    first = _load(path)["cells"][0]
    text = _source(first)
    assert first["cell_type"] == "markdown"
    assert text.startswith(f"# {path.name[:2]} — "), text[:60]
    assert "**You will be able to:**" in text
    assert re.search(r"\*\*Time:\*\* about \d+(–\d+)? minutes", text), (
        "state the time: **Time:** about N minutes."
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_ends_with_summary_and_links_to_neighbours(path):
    cells = _load(path)["cells"]
    markdown = [_source(c) for c in cells if c["cell_type"] == "markdown"]
    assert any(text.lstrip().startswith("## Summary") for text in markdown[-3:]), (
        "a ## Summary near the end"
    )
    last = _source(cells[-1])
    index = NOTEBOOKS.index(path)
    if index > 0:
        assert f"({NOTEBOOKS[index - 1].name})" in last, "link to the previous notebook"
    if index + 1 < len(NOTEBOOKS):
        assert f"({NOTEBOOKS[index + 1].name})" in last, "link to the next notebook"


@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=_ids(NOTEBOOKS[1:]))
def test_two_to_four_exercises_each_checked_and_solved(path):
    nb = _load(path)
    ids = [m for c in _code_cells(nb) for m in CHECK_CALL.findall(_source(c))]
    assert 2 <= len(ids) <= 4, f"{len(ids)} exercises"
    known = set(exercise_ids())
    for exercise_id in ids:
        assert exercise_id in known, f"{exercise_id} has no checker in helpers/exercises/"
        assert exercise_id.startswith(path.name[:2] + ".")
    for cell in _code_cells(nb):
        if CHECK_CALL.search(_source(cell)):
            assert "❌ Not yet" in _text_outputs(cell), "an unfilled exercise prints its hint"
    solutions = ROOT / "notebooks" / "solutions" / f"{path.stem}_solutions.ipynb"
    assert solutions.exists(), f"missing {solutions.relative_to(ROOT)}"
    exercises = [_source(c) for c in nb["cells"] if _source(c).startswith("## Exercises")]
    assert exercises and f"(solutions/{solutions.name})" in exercises[0], (
        "link the solutions under ## Exercises"
    )
    solved = _load(solutions)
    solved_ids = [m for c in _code_cells(solved) for m in CHECK_CALL.findall(_source(c))]
    assert sorted(solved_ids) == sorted(ids), "the solutions solve every exercise once"
    for cell in _code_cells(solved):
        if CHECK_CALL.search(_source(cell)):
            out = _text_outputs(cell)
            assert "✅ Correct" in out and "❌" not in out, _source(cell)[:80]


def test_every_exercise_checker_is_used_by_a_notebook():
    used = {
        m for p in NOTEBOOKS for c in _code_cells(_load(p)) for m in CHECK_CALL.findall(_source(c))
    }
    unused = [e for e in exercise_ids() if not e.startswith("test.") and e not in used]
    assert not unused, f"checkers no notebook uses: {unused}"


def test_readme_lists_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme, f"README table lacks {path.name}"
