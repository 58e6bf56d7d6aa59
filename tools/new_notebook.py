"""Scaffold notebook NN from tools/templates/ (`make notebook NN=14 NAME=short_name`).

It writes, and refuses to overwrite any of them:
- notebooks/NN_name.ipynb: header (title, objectives, device line, time by tools/reading_time.py),
  the Colab badge and cell (tools/sync_notebooks.py), a set-up cell, one asserted example,
  `## Exercises` with the solutions link and two checked exercises, a summary, navigation;
- notebooks/solutions/NN_name_solutions.ipynb, solving both exercises;
- helpers/exercises/nbNN.py, the two checkers (plain typed functions, the docstring's first line
  is the title) and tests/test_exercises_NN.py, their tests;
and it adds notebook NN where the collection lists its notebooks: the previous notebook's "Next"
link, NOTEBOOK_DEVICES (helpers/environment.py), notebook 00's table of titles, the README's
table, and the instructor guide (a row in "The whole collection at a glance" and a section with
the headings every notebook's section has). Then run `make execute` on 00, NN and its solutions
(`make notebook` does). docs/authoring-notebooks.md, "Adding notebook NN", lists what is left.

Usage: python tools/new_notebook.py NN short_name [--title "The title"] [--root FOLDER]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from string import Template

import nbformat

if __package__ in (None, ""):  # run as a script: make `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import reading_time, sync_notebooks

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).resolve().parent / "templates"
CELL_MARK = re.compile(r"^# %%(?: \[(markdown)\])?\n", re.M)
DEVICE_REASON = "small examples compared exactly"
EXERCISES = ("ones", "grad_of_sum")
ALL_ROW = re.compile(r"^\| \| \*\*All\*\* \|.*$", re.M)
GUIDE_ROW = re.compile(r"^\| (\d\d) \| \[.*$", re.M)


class ScaffoldError(Exception):
    """Why the scaffold refused to write anything."""


def cells(template: str, values: dict[str, str]) -> list[nbformat.NotebookNode]:
    """The cells of a template (`# %%` starts a code cell, `# %% [markdown]` a markdown one)."""
    text = Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(values)
    parts = CELL_MARK.split(text)[1:]
    made = []
    for kind, source in zip(parts[::2], parts[1::2], strict=True):
        source = source.strip("\n")
        made.append(
            nbformat.v4.new_markdown_cell(source) if kind else nbformat.v4.new_code_cell(source)
        )
    return made


def notebook(template: str, values: dict[str, str]) -> nbformat.NotebookNode:
    """A new notebook from a template, with the kernelspec `make execute` writes."""
    # Imported here: tools.execute imports nbconvert (a second), which a refusal does not need.
    from tools.execute import KERNELSPEC

    nb = nbformat.v4.new_notebook(cells=cells(template, values))
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    return nb


def title_of(path: Path) -> str:
    """The title in a notebook's first line, `# NN — Title`."""
    first = nbformat.read(path, as_version=4).cells[0].source.split("\n")[0]
    return first.split(" — ", 1)[1].strip()


def _check_arguments(root: Path, number: str, name: str) -> list[Path]:
    """The existing lesson notebooks, after checking that NN and the name may be added."""
    if not re.fullmatch(r"\d\d", number):
        raise ScaffoldError(f"NN must be two digits, such as 14; got {number!r}.")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ScaffoldError(
            f"NAME must be a short lowercase name with underscores, such as mixed_precision; "
            f"got {name!r}."
        )
    lessons = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    taken = [p for p in lessons if p.name[:2] == number]
    if taken:
        raise ScaffoldError(
            f"notebook {number} exists already: notebooks/{taken[0].name}. The scaffold never "
            f"overwrites a notebook; the next free number is {len(lessons):02d}."
        )
    if int(number) != len(lessons):
        raise ScaffoldError(
            f"notebooks are numbered without gaps (00 to {len(lessons) - 1:02d} exist): the "
            f"next one is {len(lessons):02d}, not {number}."
        )
    return lessons


def _targets(root: Path, number: str, stem: str) -> dict[str, Path]:
    targets = {
        "lesson": root / "notebooks" / f"{stem}.ipynb",
        "solutions": root / "notebooks" / "solutions" / f"{stem}_solutions.ipynb",
        "checker": root / "helpers" / "exercises" / f"nb{number}.py",
        "test": root / "tests" / f"test_exercises_{number}.py",
    }
    existing = [str(p.relative_to(root)) for p in targets.values() if p.exists()]
    if existing:
        raise ScaffoldError(f"{', '.join(existing)} exists already; the scaffold never overwrites.")
    return targets


def _with_time(nb: nbformat.NotebookNode) -> int:
    """Write the reading-time estimate into the header; return it in minutes."""
    minutes = reading_time.count(json.loads(nbformat.writes(nb))).minutes
    header = nb.cells[0]
    header.source = re.sub(r"about \d+ minutes", f"about {minutes} minutes", header.source)
    return minutes


def _link_previous(previous: Path, number: str, title: str, stem: str) -> None:
    """Add the "Next" link to the navigation cell of the notebook before NN."""
    nb = nbformat.read(previous, as_version=4)
    last = nb.cells[-1]
    if "Next:" not in last.source:
        last.source = f"{last.source.rstrip()} · Next: [{number} — {title}]({stem}.ipynb) →"
        nbformat.write(nb, previous)


def _add_device(root: Path, number: str) -> None:
    path = root / "helpers" / "environment.py"
    text = path.read_text(encoding="utf-8")
    block = re.search(r"^NOTEBOOK_DEVICES\b.*?^\}\n", text, re.M | re.S)
    if block is None:
        raise ScaffoldError("helpers/environment.py has no NOTEBOOK_DEVICES = {...} table.")
    line = f'    "{number}": ("cpu", "{DEVICE_REASON}"),\n'
    end = block.end() - 2  # before the closing "}\n"
    path.write_text(text[:end] + line + text[end:], encoding="utf-8")


def _add_title_to_00(root: Path, number: str, title: str) -> None:
    path = next((root / "notebooks").glob("00_*.ipynb"))
    nb = nbformat.read(path, as_version=4)
    cell = next((c for c in nb.cells if "TITLES = {" in c.source), None)
    if cell is None:
        raise ScaffoldError(f"{path.name} has no cell with TITLES = {{...}}.")
    head, rest = cell.source.split("TITLES = {", 1)
    table, tail = rest.split("\n}\n", 1)
    cell.source = (
        f"{head}TITLES = {{{table}\n    {json.dumps(number)}: {json.dumps(title)},\n}}\n{tail}"
    )
    nbformat.write(nb, path)


def _hours(minutes: int) -> str:
    quarters = round(minutes / 15)
    whole, part = divmod(quarters, 4)
    return f"{whole}{['', '¼', '½', '¾'][part]}"


def _add_to_guide(root: Path, values: dict[str, str], minutes: int) -> None:
    """A row in the guide's table at a glance (and its All row), and the notebook's section."""
    path = root / "docs" / "instructor-guide.md"
    text = path.read_text(encoding="utf-8")
    number, stem = values["nn"], values["stem"]
    teaching = 5 * math.floor(1.5 * minutes / 5 + 0.5)
    ids = ", ".join(f"`{number}.{e}`" for e in EXERCISES)
    row = (
        f"| {number} | [{values['title']}](../notebooks/{stem}.ipynb) | {minutes} min "
        f"| {teaching} min | {ids} | [{number} solutions](../notebooks/solutions/"
        f"{stem}_solutions.ipynb) |"
    )
    all_row = ALL_ROW.search(text)
    if all_row is None:
        raise ScaffoldError("docs/instructor-guide.md has no '| | **All** |' row in its table.")
    text = text[: all_row.start()] + row + "\n" + text[all_row.start() :]
    table = text[text.rindex("\n\n", 0, all_row.start()) : all_row.start() + len(row) + 1]
    rows = [r.group(0).strip("|").split("|") for r in GUIDE_ROW.finditer(table)]
    study = sum(int(re.match(r"\s*(\d+)", r[2]).group(1)) for r in rows)
    teach = sum(int(re.match(r"\s*(\d+)", r[3]).group(1)) for r in rows)
    exercises = sum(len(re.findall(r"`\d\d\.\w+`", r[4])) for r in rows)
    text = ALL_ROW.sub(
        f"| | **All** | **about {_hours(study)} hours** ({study} min) | **about {_hours(teach)} "
        f"hours** ({teach} min) | {exercises} exercises | |",
        text,
        count=1,
    )
    lines = "\n".join(
        f"- `{number}.{e}`: (what it asks; the mistakes its hints name)." for e in EXERCISES
    )
    section = Template((TEMPLATES / "guide_section.md.tmpl").read_text(encoding="utf-8"))
    section_text = section.substitute(
        values, minutes=minutes, teaching=teaching, exercise_lines=lines
    )
    previous = re.search(rf"^## {values['prev_nn']} — .*$", text, re.M)
    if previous is None:
        raise ScaffoldError(f"docs/instructor-guide.md has no section '## {values['prev_nn']} — '.")
    following = re.search(r"^## ", text[previous.end() :], re.M)
    at = previous.end() + following.start() if following else len(text)
    before = text[:at].rstrip("\n") + "\n\n"
    after = ("\n" + text[at:]) if following else "\n"
    path.write_text(before + section_text.rstrip("\n") + "\n" + after, encoding="utf-8")


def scaffold(number: str, name: str, title: str = "", root: Path = ROOT) -> list[Path]:
    """Create notebook NN and everything that lists it; return the files written or changed."""
    lessons = _check_arguments(root, number, name)
    stem = f"{number}_{name}"
    targets = _targets(root, number, stem)
    previous = lessons[-1]
    values = {
        "nn": number,
        "title": title.strip() or name.replace("_", " ").capitalize(),
        "stem": stem,
        "prev_nn": previous.name[:2],
        "prev_title": title_of(previous),
        "prev_stem": previous.stem,
        "minutes": "5",
    }
    lesson = notebook("notebook.txt", values)
    sync_notebooks.synced(targets["lesson"], lesson, root)
    minutes = _with_time(lesson)
    solutions = notebook("solutions.txt", values)
    sync_notebooks.synced(targets["solutions"], solutions, root)
    for key, nb in (("lesson", lesson), ("solutions", solutions)):
        targets[key].parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, targets[key])
    for key, template in (("checker", "checker.py.tmpl"), ("test", "test_exercises.py.tmpl")):
        text = Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(values)
        targets[key].write_text(text, encoding="utf-8")
    _link_previous(previous, number, values["title"], stem)
    _add_device(root, number)
    _add_title_to_00(root, number, values["title"])
    readme = root / "README.md"
    readme.write_text(sync_notebooks.synced_readme(readme.read_text(), root))
    _add_to_guide(root, values, minutes)
    changed = [previous, root / "helpers" / "environment.py", next(root.glob("notebooks/00_*"))]
    return list(targets.values()) + changed + [readme, root / "docs" / "instructor-guide.md"]


def main(argv: list[str]) -> int:
    """Scaffold the notebook named on the command line; say what was written and what is next."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("number", help="two digits: the next free notebook number")
    parser.add_argument("name", help="short lowercase name with underscores")
    parser.add_argument("--title", default="", help="the title (default: from the name)")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        written = scaffold(args.number, args.name, args.title, args.root.resolve())
    except ScaffoldError as error:
        print(f"make notebook: {error}", file=sys.stderr)
        return 1
    root = args.root.resolve()
    print("Written or updated:")
    for path in written:
        print(f"  {path.relative_to(root)}")
    stem = f"{args.number}_{args.name}"
    print(
        "Next: make execute for notebooks/00_*.ipynb, the new notebook and its solutions "
        "(make notebook does), then follow 'Adding notebook NN' in docs/authoring-notebooks.md; "
        f"`make bench NB=notebooks/{stem}.ipynb` writes its README memory row."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
