"""The README and the instructor guide: every notebook covered, every relative link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
GUIDE = ROOT / "docs" / "instructor-guide.md"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize(
    "document",
    [ROOT / "README.md", GUIDE],
    ids=lambda p: p.name,
)
def test_relative_links_resolve(document):
    text = document.read_text(encoding="utf-8")
    broken = [
        target
        for target in LINK.findall(text)
        if not target.startswith(("http://", "https://", "mailto:"))
        and not (document.parent / target).exists()
    ]
    assert broken == []


def test_the_guide_has_a_section_and_the_solutions_for_every_notebook():
    text = GUIDE.read_text(encoding="utf-8")
    for notebook in NOTEBOOKS:
        assert re.search(rf"^## {notebook.name[:2]} — ", text, re.M), (
            f"no section for {notebook.name}"
        )
        solutions = notebook.parent / "solutions" / f"{notebook.stem}_solutions.ipynb"
        if solutions.exists():
            assert f"../notebooks/solutions/{solutions.name}" in text, (
                f"guide does not point to {solutions.name}"
            )
    for heading in (
        "## Workshop plans",
        "### Three hours",
        "### 90 minutes",
        "## When widgets don't show",
    ):
        assert heading in text
