"""Estimate how long a notebook takes, by one rule for every notebook, and compare with its header.

    minutes = prose words / WORDS_PER_MINUTE
            + code lines / CODE_LINES_PER_MINUTE
            + MINUTES_PER_EXERCISE × exercises
            + MINUTES_PER_EXPLORER × explorers,   rounded to the nearest 5 (at least 5)

- prose words: the words of every markdown cell, link addresses and badges left out;
- code lines: the non-empty lines of code cells that are not comments, leaving out the cells a
  learner runs but does not read (the "Colab only" cell, and 00's set-up check, whose prose says
  its code need not be read);
- exercises: the `check(...)` calls (a notebook without any counts its `## Exercise` headings);
- explorers: the cells that show an explorer from `helpers.widgets` (by `display(...)`, or as
  the value of the cell's last line), because a learner spends a few minutes moving its controls.

`python tools/reading_time.py` prints a table for every notebook: the counts, the estimate and
the time its header states (`**Time:** about N minutes.` or `about A–B minutes.`).
`tests/test_reading_time.py` holds every stated time to the estimate (±25%, or ±10 minutes
where that is more).
"""

from __future__ import annotations

import ast
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORDS_PER_MINUTE = 150  # careful reading of technical prose, slower than the usual 200-250
CODE_LINES_PER_MINUTE = 14  # about 4 s a line: read it, predict it, glance at the output
MINUTES_PER_EXERCISE = 6  # reading the task, trying, reading a hint, trying again
MINUTES_PER_EXPLORER = 3  # moving an explorer's controls and reading what changed
ROUND_TO = 5

TOLERANCE = 0.25  # a stated time may differ from the estimate by 25% ...
TOLERANCE_MINUTES = 10  # ... or by 10 minutes, whichever is larger

NOT_READ = ("# Colab only:", "# Setup check:")  # cells that are run, not read
STATED = re.compile(r"\*\*Time:\*\* about (\d+)(?:–(\d+))? minutes")
CHECK_CALL = re.compile(r"""\bcheck\(\s*["']""")
EXERCISE_HEADING = re.compile(r"^(?:#+\s*Exercise\b|\*\*Exercise\s+\d)", re.M)
WIDGET_IMPORT = re.compile(r"^from helpers\.widgets(?:\.\w+)? import (.+)$", re.M)
LINK_TARGET = re.compile(r"\]\([^)]*\)")  # the (address) of a markdown link or image
HTML_TAG = re.compile(r"<[^>]+>")
WORD = re.compile(r"\w")


@dataclass(frozen=True)
class Counts:
    """What the estimate is made from, for one notebook."""

    words: int
    code_lines: int
    exercises: int
    explorers: int

    @property
    def raw_minutes(self) -> float:
        """The estimate before rounding."""
        return (
            self.words / WORDS_PER_MINUTE
            + self.code_lines / CODE_LINES_PER_MINUTE
            + MINUTES_PER_EXERCISE * self.exercises
            + MINUTES_PER_EXPLORER * self.explorers
        )

    @property
    def minutes(self) -> int:
        """The estimate, rounded to the nearest 5 minutes (halves up, never under 5)."""
        return max(ROUND_TO, ROUND_TO * math.floor(self.raw_minutes / ROUND_TO + 0.5))


def _load(notebook: Path | dict) -> dict:
    return notebook if isinstance(notebook, dict) else json.loads(Path(notebook).read_text("utf-8"))


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def prose_words(markdown: str) -> int:
    """Words a learner reads in a markdown cell: link addresses and HTML tags left out."""
    text = HTML_TAG.sub(" ", LINK_TARGET.sub("]", markdown))
    return sum(1 for token in text.split() if WORD.search(token))


def code_lines(code: str) -> int:
    """Lines of a code cell a learner reads: not empty, not a comment."""
    return sum(1 for line in code.splitlines() if line.strip() and not line.strip().startswith("#"))


def is_read(code: str) -> bool:
    """False for the cells a learner runs without reading (the Colab cell, 00's set-up check)."""
    return not code.lstrip().startswith(NOT_READ)


def _widget_names(cells: list[dict]) -> set[str]:
    names = set()
    for cell in cells:
        if cell["cell_type"] == "code":
            for imported in WIDGET_IMPORT.findall(_source(cell)):
                names |= {n.split(" as ")[-1].strip(" ()") for n in imported.split(",")}
    return names - {""}


def shows_explorer(code: str, widget_classes: set[str]) -> bool:
    """True if the cell displays an object built from a class of helpers.widgets."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    built = set()  # names bound to an explorer in this cell
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id in widget_classes
        ):
            built |= {t.id for t in node.targets if isinstance(t, ast.Name)}

    def is_explorer(expr: ast.expr) -> bool:
        if isinstance(expr, ast.Name):
            return expr.id in built
        return (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Name)
            and expr.func.id in widget_classes
        )

    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "display"
            and any(is_explorer(arg) for arg in node.args)
        ):
            return True
    last = tree.body[-1] if tree.body else None
    return isinstance(last, ast.Expr) and is_explorer(last.value)


def count(notebook: Path | dict) -> Counts:
    """Count words, code lines, exercises and explorers in a notebook (a path or its JSON)."""
    nb = _load(notebook)
    cells = nb["cells"]
    markdown = [_source(c) for c in cells if c["cell_type"] == "markdown"]
    code = [_source(c) for c in cells if c["cell_type"] == "code"]
    widget_classes = _widget_names(cells)
    exercises = sum(len(CHECK_CALL.findall(c)) for c in code)
    if exercises == 0:
        exercises = sum(len(EXERCISE_HEADING.findall(m)) for m in markdown)
    return Counts(
        words=sum(prose_words(m) for m in markdown),
        code_lines=sum(code_lines(c) for c in code if is_read(c)),
        exercises=exercises,
        explorers=sum(shows_explorer(c, widget_classes) for c in code),
    )


def stated_minutes(notebook: Path | dict) -> tuple[int, int] | None:
    """The (low, high) minutes the header states (low == high for "about N"), or None."""
    nb = _load(notebook)
    if not nb["cells"]:
        return None
    found = STATED.search(_source(nb["cells"][0]))
    if found is None:
        return None
    low = int(found.group(1))
    return low, int(found.group(2) or low)


def within_tolerance(stated: tuple[int, int], estimate: int) -> bool:
    """True if the stated time (its middle, for a range) is close enough to the estimate."""
    middle = (stated[0] + stated[1]) / 2
    return abs(middle - estimate) <= max(TOLERANCE * estimate, TOLERANCE_MINUTES)


def lesson_notebooks() -> list[Path]:
    """The lesson notebooks, in reading order (solutions state no time)."""
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def table(notebooks: list[Path]) -> str:
    """The counts, the estimate and the stated time of each notebook, as a text table."""
    rows = [
        f"{'notebook':40} {'words':>6} {'code':>5} {'ex.':>4} {'expl.':>5} "
        f"{'raw':>6} {'estimate':>9} {'stated':>8}  ok",
    ]
    for path in notebooks:
        counts, stated = count(path), stated_minutes(path)
        shown = "—" if stated is None else "–".join(str(m) for m in sorted(set(stated)))
        ok = "" if stated is None else ("yes" if within_tolerance(stated, counts.minutes) else "NO")
        rows.append(
            f"{path.stem:40} {counts.words:>6} {counts.code_lines:>5} {counts.exercises:>4} "
            f"{counts.explorers:>5} {counts.raw_minutes:>6.1f} {counts.minutes:>5} min "
            f"{shown:>4} min  {ok}"
        )
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    """Print the table for the notebooks named, or for every lesson notebook."""
    chosen = [Path(a).resolve() for a in argv if a.endswith(".ipynb")]
    print(table(chosen or lesson_notebooks()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
