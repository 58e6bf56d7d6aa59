"""Write what every notebook and the README share, from one source: pyproject's repository URL.

- the "Open in Colab" badge, on the line after each notebook's title;
- the Colab cell, the first code cell of each notebook: in Colab it installs the helper package
  (never torch: Colab has its own build) and is safe to run twice; elsewhere it does nothing;
- the README's table of notebooks (title, time, Colab badge), between two marker comments.

`python tools/sync_notebooks.py [NOTEBOOK ...]` writes them (all notebooks when none is named);
`--check` only reports what is out of date.
After writing, re-run `make execute`: the notebooks' execution counts have changed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_LINE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\s*$", re.M)
CELL_MARK = "# Colab only:"
BINDER_START = "<!-- binder:start -->"
BINDER_END = "<!-- binder:end -->"
TABLE_START = "<!-- notebooks:start -->"
BOOK_START = "<!-- book-link:start -->"
BOOK_END = "<!-- book-link:end -->"
TABLE_END = "<!-- notebooks:end -->"
BRANCH = "main"


def repository(root: Path = ROOT) -> tuple[str, str]:
    """Return (owner, name) of the GitHub repository named in pyproject.toml."""
    found = re.search(r'^Repository\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(), re.M)
    if not found:
        raise ValueError(
            'pyproject.toml needs Repository = "https://github.com/OWNER/REPO" in [project.urls]'
        )
    url = found.group(1)
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(\.git)?/?", url)
    if not match:
        raise ValueError(f"[project.urls] Repository must be a GitHub URL, not {url!r}")
    return match.group(1), match.group(2)


def book_url(root: Path = ROOT) -> str:
    """The book's address on GitHub Pages (make book, docs/book.md), from the repository URL."""
    owner, name = repository(root)
    return f"https://{owner.lower()}.github.io/{name}/"


def colab_url(notebook: Path, root: Path = ROOT) -> str:
    """The Colab address that opens `notebook` from the repository's main branch."""
    owner, name = repository(root)
    relative = notebook.resolve().relative_to(root.resolve()).as_posix()
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{BRANCH}/{relative}"


def badge(notebook: Path, root: Path = ROOT) -> str:
    """The markdown of the Open in Colab badge for `notebook`."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(notebook, root)})"


def binder_badge(root: Path = ROOT) -> str:
    """The markdown of the Binder badge that opens notebook 00 in JupyterLab."""
    owner, name = repository(root)
    url = (
        f"https://mybinder.org/v2/gh/{owner}/{name}/{BRANCH}"
        "?urlpath=lab/tree/notebooks/00_setup_check.ipynb"
    )
    return f"[![Binder](https://mybinder.org/badge_logo.svg)]({url})"


def colab_cell_source(root: Path = ROOT) -> str:
    """The source of the first code cell: fetch the helper package in Colab, else do nothing."""
    owner, name = repository(root)
    return (
        f"{CELL_MARK} fetch Loop Lab's helper package (Colab has its own PyTorch). Elsewhere this\n"
        "# cell does nothing, and running it twice is harmless.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import importlib.metadata\n"
        "    import subprocess\n"
        "\n"
        "    try:  # Loop Lab's own package, not just any module called helpers\n"
        '        importlib.metadata.distribution("loop-lab")\n'
        "    except importlib.metadata.PackageNotFoundError:\n"
        f'        package = "loop-lab @ git+https://github.com/{owner}/{name}@{BRANCH}"\n'
        '        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", package]\n'
        "        subprocess.run(pip, check=True)\n"
        "        importlib.invalidate_caches()"
    )


def notebooks(root: Path = ROOT) -> list[Path]:
    """Every notebook and solutions notebook, in reading order."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
        (root / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb")
    )


def synced(notebook: Path, nb: nbformat.NotebookNode, root: Path = ROOT) -> bool:
    """Add or refresh the badge and the Colab cell in `nb`; return True if it changed."""
    changed = False
    header = nb.cells[0]
    lines = BADGE_LINE.sub("", header.source).split("\n")
    title, rest = lines[0], "\n".join(lines[1:]).lstrip("\n")
    new_source = f"{title}\n\n{badge(notebook, root)}\n\n{rest}".rstrip("\n")
    if header.source != new_source:
        header.source, changed = new_source, True
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    source = colab_cell_source(root)
    if code and nb.cells[code[0]].source.startswith(CELL_MARK):
        if nb.cells[code[0]].source != source:
            nb.cells[code[0]].source, changed = source, True
    else:
        nb.cells.insert(1, nbformat.v4.new_code_cell(source))
        changed = True
    return changed


def _title_and_time(notebook: Path) -> tuple[str, str]:
    header = nbformat.read(notebook, as_version=4).cells[0].source
    title = header.split("\n")[0].lstrip("# ").split(" — ", 1)[1].strip()
    minutes = re.search(r"\*\*Time:\*\* about (\d+(?:–\d+)?) minutes", header)
    return title, (f"{minutes.group(1)} min" if minutes else "")


def readme_table(root: Path = ROOT) -> str:
    """The README's table of notebooks, generated from the notebooks' headers."""
    rows = [
        TABLE_START,
        "| # | Notebook | Time | Solutions | Colab |",
        "|---|---|---|---|---|",
    ]
    for notebook in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        title, time = _title_and_time(notebook)
        solutions = notebook.parent / "solutions" / f"{notebook.stem}_solutions.ipynb"
        solved = f"[solutions](notebooks/solutions/{solutions.name})" if solutions.exists() else "—"
        rows.append(
            f"| {notebook.name[:2]} | [{title}](notebooks/{notebook.name}) | {time} | {solved} "
            f"| {badge(notebook, root)} |"
        )
    rows.append(TABLE_END)
    return "\n".join(rows)


def _replace_between(text: str, start: str, end: str, new: str) -> str:
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"README.md needs the markers {start} and {end}")
    return pattern.sub(lambda _: new, text)


def synced_readme(text: str, root: Path = ROOT) -> str:
    """Return the README text with its Binder badge and notebook table regenerated."""
    text = _replace_between(
        text, BINDER_START, BINDER_END, f"{BINDER_START}{binder_badge(root)}{BINDER_END}"
    )
    text = _replace_between(
        text, BOOK_START, BOOK_END, f"{BOOK_START}[the Loop Lab book]({book_url(root)}){BOOK_END}"
    )
    return _replace_between(text, TABLE_START, TABLE_END, readme_table(root))


def main(argv: list[str]) -> int:
    """Write (or with --check, only list) what is out of date."""
    check = "--check" in argv
    chosen = [Path(a).resolve() for a in argv if a.endswith(".ipynb")]
    stale = []
    for notebook in chosen or notebooks():
        nb = nbformat.read(notebook, as_version=4)
        if synced(notebook, nb):
            stale.append(notebook.relative_to(ROOT).as_posix())
            if not check:
                nbformat.write(nb, notebook)
    readme = ROOT / "README.md"
    text = readme.read_text()
    if synced_readme(text) != text:
        stale.append("README.md")
        if not check:
            readme.write_text(synced_readme(text))
    if stale:
        verb = "out of date" if check else "updated"
        print(f"{verb}: " + ", ".join(stale))
        if check:
            print("Run `python tools/sync_notebooks.py`, then `make execute`.")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
