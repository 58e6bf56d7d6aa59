"""Reading times: one rule (tools/reading_time.py) for every notebook, and headers that follow it."""

from __future__ import annotations

import json
import math
import re

import pytest

from tools import reading_time as rt

LESSONS = rt.lesson_notebooks()

COLAB_CELL = (
    '# Colab only: fetch the helpers.\nimport sys\n\nif "google.colab" in sys.modules:\n    pass'
)


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code(text: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": text, "outputs": []}


def notebook(*cells: dict) -> dict:
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def tiny() -> dict:
    """A small notebook whose counts are known by hand."""
    return notebook(
        markdown(
            "# 99 — Tiny\n\n"
            "[![Open In Colab](https://example.org/badge.svg)](https://example.org/99.ipynb)\n\n"
            "**Time:** about 10 minutes."
        ),
        code(COLAB_CELL),
        code("# Setup check: run, not read\nimport os\nimport sys\n"),
        code(
            "import torch\n\nfrom helpers.widgets import AccumulationExplorer, LearningRateExplorer\n"
        ),
        markdown("## One\n\nA tensor (see [notebook 01](01_x.ipynb)) has a `grad_fn` — or none."),
        code(
            "# a comment line\nx = torch.ones(3)  # a trailing comment\n\n   \nassert x.sum() == 3\n"
        ),
        code("explorer = LearningRateExplorer()\nexplorer"),
        code("display(AccumulationExplorer())"),
        code("explorer.set(lr=0.1)\nexplorer.message"),  # shows a string, not an explorer
        markdown("## Exercises\n\n**Exercise 1.** Do it."),
        code('answer = None\ncheck("99.one", answer)'),
        code("answer = None\ncheck( '99.two', answer)"),
    )


# ----- the counting, on a notebook built here ---------------------------------------------------


def test_prose_words_leave_out_link_addresses_and_badges():
    assert (
        rt.prose_words("A tensor (see [notebook 01](01_x.ipynb)) has a `grad_fn` — or none.") == 10
    )
    assert rt.prose_words("[![Open In Colab](https://a.b/c.svg)](https://a.b/d)") == 3
    assert rt.prose_words("<b>bold</b> words") == 2
    assert rt.prose_words("- — *") == 0  # no letters or digits: no word


def test_code_lines_are_not_empty_and_not_comments():
    assert (
        rt.code_lines("# a comment\nx = 1  # counted\n\n    \n  # indented comment\ny = 2\n") == 2
    )


def test_the_colab_cell_and_the_setup_check_are_run_not_read():
    assert not rt.is_read(COLAB_CELL)
    assert not rt.is_read("# Setup check: is everything there?\nimport os")
    assert rt.is_read("import torch")


def test_explorers_are_found_by_display_or_as_the_last_line():
    classes = {"LearningRateExplorer", "AccumulationExplorer"}
    assert rt.shows_explorer("explorer = LearningRateExplorer()\nexplorer", classes)
    assert rt.shows_explorer("display(AccumulationExplorer())", classes)
    assert rt.shows_explorer("a = AccumulationExplorer()\ndisplay(a)\nprint(1)", classes)
    assert not rt.shows_explorer("explorer.set(lr=0.1)\nexplorer.message", classes)
    assert not rt.shows_explorer("slider = IntSlider()\nslider", classes)  # not from helpers
    assert not rt.shows_explorer("display(Markdown('| a |'))", classes)
    assert not rt.shows_explorer("this is not python (", classes)


def test_counts_of_the_tiny_notebook():
    counts = rt.count(tiny())
    header_words = 2 + 3 + 4  # "# 99 — Tiny", the badge's alt text, "**Time:** about 10 minutes."
    assert counts.words == header_words + (1 + 10) + (1 + 2 + 2)
    assert counts.code_lines == 2 + 2 + 2 + 1 + 2 + 2 + 2  # no Colab cell, no set-up check
    assert counts.exercises == 2  # the two check( calls
    assert counts.explorers == 2


def test_exercise_headings_count_where_there_is_no_check():
    nb = notebook(
        markdown("## Exercise 1\n\nDo this."),
        markdown("**Exercise 2.** Do that.\n\n**Exercise 3 — more.** And more."),
        code("x = 1"),
    )
    assert rt.count(nb).exercises == 3


def test_the_estimate_is_the_rule_rounded_to_five_minutes():
    counts = rt.Counts(words=1500, code_lines=140, exercises=3, explorers=2)
    expected = 1500 / rt.WORDS_PER_MINUTE + 140 / rt.CODE_LINES_PER_MINUTE + 3 * 6 + 2 * 3
    assert rt.MINUTES_PER_EXERCISE == 6 and rt.MINUTES_PER_EXPLORER == 3
    assert counts.raw_minutes == pytest.approx(expected)
    assert counts.minutes % 5 == 0 and abs(counts.minutes - expected) <= 2.5
    assert rt.Counts(0, 0, 0, 0).minutes == 5  # never under 5
    halfway = rt.Counts(
        words=int(7.5 * rt.WORDS_PER_MINUTE), code_lines=0, exercises=0, explorers=0
    )
    assert halfway.raw_minutes == 7.5 and halfway.minutes == 10  # halves round up


def test_stated_times_are_parsed_from_the_header():
    assert rt.stated_minutes(tiny()) == (10, 10)
    ranged = notebook(markdown("# 98 — Ranged\n\n**Time:** about 45–55 minutes."))
    assert rt.stated_minutes(ranged) == (45, 55)
    assert rt.stated_minutes(notebook(markdown("# 97 — No time"))) is None
    assert rt.stated_minutes(notebook()) is None


def test_tolerance_is_a_quarter_or_ten_minutes_whichever_is_larger():
    assert rt.within_tolerance((40, 40), 30) and not rt.within_tolerance((41, 41), 30)  # 10 min
    assert rt.within_tolerance((100, 100), 80) and not rt.within_tolerance((101, 101), 80)  # 25%
    assert rt.within_tolerance((45, 55), 60)  # a range counts by its middle, 50
    assert not rt.within_tolerance((5, 5), 20)


def test_a_notebook_on_disk_is_read_the_same_as_its_json(tmp_path):
    path = tmp_path / "99_tiny.ipynb"
    path.write_text(json.dumps(tiny()), encoding="utf-8")
    assert rt.count(path) == rt.count(tiny())
    assert rt.stated_minutes(path) == (10, 10)
    table = rt.table([path])
    assert "99_tiny" in table and "10 min" in table


# ----- the notebooks themselves ---------------------------------------------------------------


def test_the_table_lists_every_lesson_notebook(capsys):
    assert rt.main([]) == 0
    printed = capsys.readouterr().out
    for path in LESSONS:
        assert path.stem in printed


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_stated_time_matches_the_estimate(path):
    stated, counts = rt.stated_minutes(path), rt.count(path)
    assert stated is not None, "state the time: **Time:** about N minutes."
    assert rt.within_tolerance(stated, counts.minutes), (
        f"{path.name} states {stated[0]}–{stated[1]} min; the rule estimates {counts.minutes} "
        f"({counts}); see docs/authoring-notebooks.md, 'How long a notebook takes'"
    )


def test_the_instructor_guide_quotes_each_header_time():
    guide = (rt.ROOT / "docs" / "instructor-guide.md").read_text(encoding="utf-8")
    for path in LESSONS:
        row = re.search(rf"^\| {path.name[:2]} \| \[.*$", guide, re.M)
        assert row, f"the guide's table at a glance has no row for {path.name}"
        cells = [c.strip() for c in row.group(0).strip("|").split("|")]
        low, high = rt.stated_minutes(path)
        stated = f"{low} min" if low == high else f"{low}–{high} min"
        teaching = 5 * math.floor(1.5 * (low + high) / 2 / 5 + 0.5)
        assert cells[2:4] == [stated, f"{teaching} min"], (
            f"docs/instructor-guide.md: {path.name} states {stated}; its row says {cells[2:4]} "
            f"(self-study, then teaching = 1.5 × self-study)"
        )


def test_the_instructor_guide_lists_each_notebooks_exercises():
    guide = (rt.ROOT / "docs" / "instructor-guide.md").read_text(encoding="utf-8")
    for path in LESSONS:
        row = re.search(rf"^\| {path.name[:2]} \| \[.*$", guide, re.M).group(0)
        listed = re.findall(r"`(\d\d\.\w+)`", row.strip("|").split("|")[4])
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        used = [m for c in code for m in re.findall(r"""check\(\s*["'](\d\d\.\w+)["']""", c)]
        assert listed == used, f"docs/instructor-guide.md lists {listed} for {path.name}: {used}"
