"""The instructor guide lists every "You may have read" box of the notebooks, and nothing else.

A box is a markdown line `> **You may have read:** …` followed by `> **What actually happens:** …`,
and the code cell right after its cell holds the assert that disproves the belief. The guide's
section "Beliefs learners bring, and where each is disproved" has one table row per box: the
belief as the box quotes it, the notebook and the section the box sits in, and the asserts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
GUIDE = ROOT / "docs" / "instructor-guide.md"
SECTION = "## Beliefs learners bring, and where each is disproved"
BOX = re.compile(r"^> \*\*You may have read:\*\*\s*(.+?)\s*$", re.M)
ANSWER = re.compile(r"^> \*\*What actually happens:\*\*\s*\S", re.M)
HEADING = re.compile(r"^(#{2,4})\s+(.+?)\s*$", re.M)
QUOTED_ASSERT = re.compile(r"`(assert [^`]+)`")

# The beliefs issue 15 lists from the seed texts, each by a phrase its box must contain.
SEED_BELIEFS = {
    "the optimizer accumulates (holds) the gradients": "optimizer accumulates",
    "the loss function object computes the gradients": "loss function computes the gradients",
    "zero_grad must come right before backward": "zero_grad must come right before backward",
    "param.grad = autograd.backward(...)": "param.grad = autograd.backward(",
    "param.data = ...": "param.data =",
    "if param.grad:": "if param.grad:",
    "MSE is the Euclidean distance": "MSE is the Euclidean distance",
    "the model is updated although it is never called": "never called",
}


@dataclass(frozen=True)
class Box:
    notebook: str  # "01"
    belief: str  # the text after "You may have read:", as written
    section: str  # the nearest heading above the box, without its #s
    next_code: str  # the source of the cell right after the box's cell ("" if not code)


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def boxes() -> list[Box]:
    """Every box in the lesson notebooks, in reading order."""
    found = []
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        section = ""
        for i, cell in enumerate(cells):
            if cell["cell_type"] != "markdown":
                continue
            text = _source(cell)
            position = 0
            for match in BOX.finditer(text):
                headings = HEADING.findall(text[position : match.start()])
                section = headings[-1][1] if headings else section
                position = match.start()
                following = cells[i + 1] if i + 1 < len(cells) else {"cell_type": "markdown"}
                code = _source(following) if following["cell_type"] == "code" else ""
                found.append(Box(path.name[:2], match.group(1), section, code))
            headings = HEADING.findall(text[position:])
            section = headings[-1][1] if headings else section
    return found


def guide_rows() -> list[tuple[str, str, str]]:
    """The (belief, where, asserts) cells of each row of the guide's table of beliefs."""
    text = GUIDE.read_text(encoding="utf-8")
    assert SECTION in text, f"the guide needs the section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in body.splitlines():
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0].startswith("Belief"):  # the header row
            continue
        assert len(cells) == 3, f"a row of the beliefs table has {len(cells)} cells: {line}"
        rows.append((cells[0], cells[1], cells[2]))
    return rows


def _where(cell: str) -> tuple[str, str]:
    number = re.search(r"\[(\d\d)\]\(", cell)
    section = re.search(r"“(.+)”", cell)
    assert number and section, f"write where as [NN](notebook), “Section”: {cell}"
    return number.group(1), section.group(1)


BOXES = boxes()


def test_the_notebooks_have_belief_boxes_in_the_house_style():
    assert len(BOXES) >= len(SEED_BELIEFS)
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            text = _source(cell)
            if cell["cell_type"] == "markdown" and BOX.search(text):
                assert len(BOX.findall(text)) == len(ANSWER.findall(text)), (
                    f"{path.name}: each 'You may have read' needs its 'What actually happens'"
                )


@pytest.mark.parametrize("box", BOXES, ids=[f"{b.notebook}:{b.belief[:40]}" for b in BOXES])
def test_each_box_is_followed_by_the_assert_that_disproves_it(box):
    assert "assert" in box.next_code, (
        f"{box.notebook}: the cell after the box {box.belief!r} must assert the truth"
    )


@pytest.mark.parametrize("box", BOXES, ids=[f"{b.notebook}:{b.belief[:40]}" for b in BOXES])
def test_each_box_has_its_row_in_the_guide(box):
    rows = [
        (where, asserts)
        for belief, where, asserts in guide_rows()
        if box.belief in belief and _where(where)[0] == box.notebook
    ]
    assert rows, (
        f"docs/instructor-guide.md, {SECTION[3:]!r}: add a row for notebook {box.notebook}'s "
        f"box {box.belief}"
    )
    where, asserts = rows[0]
    assert _where(where)[1] == box.section, (
        f"the row for {box.belief} names section {_where(where)[1]!r}; the box is under "
        f"{box.section!r}"
    )
    quoted = QUOTED_ASSERT.findall(asserts)
    assert quoted, f"quote the assert that disproves {box.belief} in the row"
    for line in quoted:
        assert line in box.next_code, f"{line!r} is not in the cell after the box"


def test_every_row_of_the_guide_has_its_box():
    known = {(b.notebook, b.belief) for b in BOXES}
    for belief, where, _ in guide_rows():
        number = _where(where)[0]
        assert any(n == number and text in belief for n, text in known), (
            f"the guide lists {belief} in {number}, but that notebook has no such box"
        )
    assert len(guide_rows()) == len(BOXES)


@pytest.mark.parametrize("belief", list(SEED_BELIEFS))
def test_every_seed_belief_has_a_box(belief):
    phrase = SEED_BELIEFS[belief]
    assert any(phrase in box.belief for box in BOXES), f"no box answers {belief!r}"
