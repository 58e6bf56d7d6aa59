"""Build the book: a static HTML site of every notebook with its stored outputs, offline.

`python tools/book.py` writes the Sphinx source into build/book/src/ (a short conf.py, a landing
page cut from README.md, the notebooks and the instructor guide, copied) and the HTML into
build/book/html/ (open build/book/html/index.html, or serve that folder). Nothing is executed:
myst-nb shows the outputs `make execute` stored. Sphinx warnings fail the build.

This module is also the Sphinx extension the build loads (`setup`): it shows each explorer as
its stored picture with a caption and links to run it live, gives every figure its alt text
from the output's metadata, and copies an offline MathJax into the site.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.sync_notebooks import BRANCH, book_url, repository  # noqa: E402

__all__ = [
    "BOOK",
    "SOURCE",
    "OUTPUT",
    "landing_markdown",
    "rewrite_links",
    "figure_alt",
    "explorer_caption",
    "live_links",
    "book_url",
    "write_source",
    "sphinx_config",
    "label_toggles",
    "build",
    "setup",
    "main",
]

BOOK = ROOT / "build" / "book"
SOURCE = BOOK / "src"
OUTPUT = BOOK / "html"
DOCTREES = BOOK / "doctrees"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
README_START = "<!-- book:start -->"
README_END = "<!-- notebooks:end -->"
DEFAULT_FIGURE_TEXT = re.compile(r"<Figure size [\d.]+x[\d.]+ with \d+ Axes>")
REPR_TEXT = re.compile(r"^[A-Za-z_]\w*\(.*\)$", re.S)
LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")
IMAGE_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg", ".gif"}
MATHJAX_FILES = ["tex-chtml.js", "output/chtml/fonts/woff-v2"]
GUIDE = "docs/instructor-guide.md"
SOLUTIONS_INDEX = "notebooks/solutions/index.md"

BOOK_CSS = """\
/* Loop Lab's book: explorer pictures and their captions. */
figure.explorer { margin: 1rem 0; }
figure.explorer img { max-width: 100%; height: auto; border: 1px solid var(--pst-color-border); }
figure.explorer figcaption { font-size: 0.95em; margin-top: 0.4rem; }
div.explorer-missing { border-left: 4px solid var(--pst-color-primary); padding: 0.4rem 0.8rem; }
"""


def _book_pages() -> list[str]:
    """Repository paths of every page the book contains, in reading order."""
    learner = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    solutions = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))
    pages = [p.relative_to(ROOT).as_posix() for p in learner + solutions]
    return pages + [GUIDE]


def rewrite_links(markdown: str, page: str, pages: set[str]) -> tuple[str, set[str]]:
    """Point `page`'s relative links at book pages, or at GitHub; return the text and images.

    `page` is the repository path of the markdown file, `pages` the repository paths the book
    holds. A link to a book page stays relative (Sphinx resolves it); the solutions folder
    becomes the solutions page; an image stays relative and is returned so the caller copies
    it; anything else points at the file on GitHub.
    """
    owner, name = repository()
    base = Path(page).parent
    images: set[str] = set()

    def fix(match: re.Match) -> str:
        opening, target, closing = match.groups()
        if re.match(r"^([a-z][a-z0-9+.-]*:|#)", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        resolved = _normalise(base / path)
        fragment = f"#{anchor}" if anchor else ""
        if resolved in pages:
            return f"{opening}{target}{closing}"
        if resolved == "notebooks/solutions" and SOLUTIONS_INDEX in pages:
            relative = _relative(SOLUTIONS_INDEX, base)
            return f"{opening}{relative}{fragment}{closing}"
        if Path(resolved).suffix.lower() in IMAGE_SUFFIXES and (ROOT / resolved).is_file():
            images.add(resolved)
            return match.group(0)
        kind = "tree" if (ROOT / resolved).is_dir() else "blob"
        url = f"https://github.com/{owner}/{name}/{kind}/{BRANCH}/{resolved}{fragment}"
        return f"{opening}{url}{closing}"

    return LINK.sub(fix, markdown), images


def _normalise(path: Path) -> str:
    parts: list[str] = []
    for part in path.as_posix().split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def _relative(target: str, base: Path) -> str:
    depth = len([p for p in base.as_posix().split("/") if p not in ("", ".")])
    return "../" * depth + target


def landing_markdown(readme: str, pages: list[str]) -> tuple[str, set[str]]:
    """The landing page: README's introduction up to its notebook table, and the book's toc.

    The introduction runs from `<!-- book:start -->` (or the top) to `<!-- notebooks:end -->`.
    """
    if README_END not in readme:
        raise ValueError(f"README.md needs the marker {README_END} after its notebook table")
    start = readme.find(README_START)
    intro = readme[start + len(README_START) if start >= 0 else 0 : readme.index(README_END)]
    if start >= 0 and not intro.lstrip().startswith("# "):
        intro = "# Loop Lab\n\n" + intro.lstrip("\n")
    text, images = rewrite_links(intro.rstrip() + "\n", "README.md", set(pages))
    learner = [p for p in pages if re.fullmatch(r"notebooks/\d\d_[^/]+\.ipynb", p)]
    toc = [
        "",
        _toctree("Notebooks", [p.removesuffix(".ipynb") for p in learner]),
        _toctree("Solutions", [SOLUTIONS_INDEX.removesuffix(".md")]),
        _toctree("For instructors", [GUIDE.removesuffix(".md")]),
    ]
    return text + "\n".join(toc), images


def _toctree(caption: str, entries: list[str], hidden: bool = True) -> str:
    options = [f":caption: {caption}", ":maxdepth: 1"] + ([":hidden:"] if hidden else [])
    return "```{toctree}\n" + "\n".join(options + [""] + entries) + "\n```\n"


def _solutions_markdown(pages: list[str]) -> str:
    solved = [Path(p).name.removesuffix(".ipynb") for p in pages if "/solutions/" in p]
    return (
        "# Worked solutions\n\n"
        "The worked solution to every exercise, one notebook per lesson. Try the exercise in\n"
        "the lesson first: its `check` gives hints without giving the answer away.\n\n"
        + _toctree("Solutions", solved, hidden=False)
    )


def _conf_py() -> str:
    return (
        '"""Sphinx configuration of the book; written by tools/book.py, do not edit."""\n\n'
        "import sys\n\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tools.book import sphinx_config  # noqa: E402\n\n"
        "globals().update(sphinx_config())\n"
    )


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _copy_if_changed(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or not filecmp.cmp(source, target, shallow=False):
        shutil.copy2(source, target)


def write_source(source: Path = SOURCE) -> list[str]:
    """Write the Sphinx source of the book into `source`; return the repository paths copied.

    Files are rewritten only when their content changed, so Sphinx re-reads only those.
    """
    pages = _book_pages()
    landing, images = landing_markdown((ROOT / "README.md").read_text(), pages + [SOLUTIONS_INDEX])
    wanted = {"conf.py", "index.md", SOLUTIONS_INDEX, "_static/book.css"}
    _write_if_changed(source / "conf.py", _conf_py())
    _write_if_changed(source / "index.md", landing)
    _write_if_changed(source / SOLUTIONS_INDEX, _solutions_markdown(pages))
    _write_if_changed(source / "_static" / "book.css", BOOK_CSS)
    for page in pages:
        if page.endswith(".md"):
            text, found = rewrite_links((ROOT / page).read_text(), page, set(pages))
            images |= found
            _write_if_changed(source / page, text)
        else:
            _copy_if_changed(ROOT / page, source / page)
        wanted.add(page)
    for image in images:
        _copy_if_changed(ROOT / image, source / image)
        wanted.add(image)
    for stale in [p for p in source.rglob("*") if p.is_file()]:
        relative = stale.relative_to(source).as_posix()
        if relative not in wanted and not relative.startswith((".", "_build")):
            stale.unlink()
    return pages


def sphinx_config() -> dict[str, Any]:
    """The Sphinx configuration of the book (conf.py takes it whole)."""
    owner, name = repository()
    return {
        "project": "Loop Lab",
        "author": "Loop Lab contributors",
        "copyright": "Loop Lab contributors",
        "extensions": ["myst_nb", "tools.book"],
        "exclude_patterns": ["_build", "**/.ipynb_checkpoints"],
        "root_doc": "index",
        "language": "en",
        # This file is the build's extension: when it changes, every page is written again.
        "looplab_book_digest": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        # Stored outputs only: `make execute` is the one way outputs are made.
        "nb_execution_mode": "off",
        # An explorer's static picture wins over its live view; the live view needs a kernel,
        # and the embedded-widget scripts would come from a CDN.
        "nb_mime_priority_overrides": [
            ("*", "image/png", 5),
            ("*", WIDGET_VIEW, None),
            ("*", "application/javascript", None),
        ],
        "nb_ipywidgets_js": {},
        "myst_enable_extensions": ["dollarmath", "amsmath"],
        "myst_heading_anchors": 3,
        "html_theme": "sphinx_book_theme",
        "html_title": "Loop Lab",
        "html_static_path": ["_static"],
        "html_css_files": ["book.css"],
        "html_copy_source": False,
        "html_show_sourcelink": False,
        "html_last_updated_fmt": None,
        # Without it the theme logs a console error on a reader's first visit.
        "html_context": {"default_mode": "auto"},
        "mathjax_path": "mathjax/tex-chtml.js",
        "html_theme_options": {
            "repository_url": f"https://github.com/{owner}/{name}",
            "repository_branch": BRANCH,
            "path_to_docs": "",
            "use_repository_button": True,
            "use_download_button": False,
            "use_fullscreen_button": False,
            "launch_buttons": {
                "colab_url": "https://colab.research.google.com",
                "binderhub_url": "https://mybinder.org",
                "notebook_interface": "jupyterlab",
            },
            "show_toc_level": 1,
            "navigation_with_keys": False,
        },
    }


# --- the Sphinx extension ------------------------------------------------------------------


def _metadata_alt(output: dict) -> str:
    alt = (output.get("metadata") or {}).get("image/png", {}).get("alt", "")
    return " ".join(alt.split()) if isinstance(alt, str) else ""


def _widget_name(caption: str) -> str:
    name = caption.split(":", 1)[0].strip()
    return name if re.fullmatch(r"[A-Z]\w+", name) else "the explorer"


def figure_alt(output: dict) -> str:
    """The alt text of a stored figure: its metadata's alt, else a descriptive text/plain."""
    alt = _metadata_alt(output)
    if alt:
        return alt
    text = _plain(output)
    if text and not DEFAULT_FIGURE_TEXT.fullmatch(text) and not REPR_TEXT.match(text):
        return text
    return ""


def explorer_caption(output: dict) -> str:
    """The one-line caption of an explorer's output, or '' when text/plain is only a repr."""
    text = _plain(output)
    return "" if not text or REPR_TEXT.match(text) else text.splitlines()[0].strip()


def _plain(output: dict) -> str:
    text = output.get("data", {}).get("text/plain", "")
    return ("".join(text) if isinstance(text, list) else text).strip()


def live_links(docname: str) -> list[tuple[str, str]]:
    """(label, URL) pairs that open the notebook `docname` live: Colab and Binder."""
    owner, name = repository()
    path = f"{docname}.ipynb"
    return [
        (
            "Run it live in Colab",
            f"https://colab.research.google.com/github/{owner}/{name}/blob/{BRANCH}/{path}",
        ),
        (
            "on Binder",
            f"https://mybinder.org/v2/gh/{owner}/{name}/{BRANCH}?urlpath=lab/tree/{path}",
        ),
    ]


def _links_nodes(docname: str) -> list:
    from docutils import nodes

    (colab_label, colab), (binder_label, binder) = live_links(docname)
    return [
        nodes.reference("", colab_label, refuri=colab),
        nodes.Text(" or "),
        nodes.reference("", binder_label, refuri=binder),
        nodes.Text("."),
    ]


def _explorer_node(bundle, output: dict, docname: str):
    """A figure of the explorer's stored picture with caption and live links, or a note."""
    from docutils import nodes

    caption = explorer_caption(output)
    images = [
        image
        for child in bundle.children
        if child.get("mime_type") == "image/png"
        for image in child.findall(nodes.image)
    ]
    if images:
        image = images[0].deepcopy()
        image["alt"] = _metadata_alt(output) or f"Picture of {_widget_name(caption)} as stored"
        figcaption = nodes.caption("", *([nodes.Text(f"{caption} ")] if caption else []))
        figcaption += _links_nodes(docname)
        return nodes.figure("", image, figcaption, classes=["explorer"])
    text = caption or "An interactive widget appears here when the notebook runs"
    paragraph = nodes.paragraph("", "", nodes.Text(f"{text.rstrip('.')}. "), *_links_nodes(docname))
    return nodes.container("", paragraph, classes=["explorer-missing"])


def _apply_outputs(document, notebook, docname: str) -> list[int]:
    """Replace explorer bundles and add figures' alt text; return cells with figures lacking alt."""
    from docutils import nodes

    lacking: list[int] = []
    explorers = 0

    def is_cell(node) -> bool:
        return isinstance(node, nodes.container) and node.get("nb_element") == "cell_code"

    def is_bundle(node) -> bool:
        return isinstance(node, nodes.container) and node.get("nb_element") == "mime_bundle"

    for cell in list(document.findall(is_cell)):
        outputs = [
            o
            for o in notebook.cells[cell["cell_index"]].get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result")
        ]
        for bundle in list(cell.findall(is_bundle)):
            kinds = [child.get("mime_type") for child in bundle.children]
            while outputs and not set(kinds) <= set(outputs[0].get("data", {})):
                outputs.pop(0)
            if not outputs:
                break
            output = outputs.pop(0)
            if WIDGET_VIEW in output.get("data", {}):
                explorer = _explorer_node(bundle, output, docname)
                explorers += 1
                explorer["ids"] = [f"explorer-{explorers}"]
                bundle.replace_self(explorer)
                continue
            alt = figure_alt(output)
            for child in bundle.children:
                if child.get("mime_type") == "image/png":
                    for image in child.findall(nodes.image):
                        if alt:
                            image["alt"] = alt
                        else:
                            lacking.append(cell["cell_index"])
    return lacking


def _post_transform_class():
    from sphinx.transforms.post_transforms import SphinxPostTransform
    from sphinx.util import logging

    logger = logging.getLogger(__name__)

    class NotebookOutputs(SphinxPostTransform):
        """Explorers as pictures with captions and live links; figures with alt text."""

        default_priority = 3  # before myst-nb picks one mime type per output (priority 4)

        def run(self, **kwargs: Any) -> None:
            import nbformat

            path = Path(self.env.doc2path(self.env.docname))
            if path.suffix != ".ipynb":
                return
            notebook = nbformat.read(path, as_version=4)
            lacking = _apply_outputs(self.document, notebook, self.env.docname)
            if lacking:
                cells = ", ".join(str(i + 1) for i in sorted(set(lacking)))
                logger.info(f"{self.env.docname}: figures without alt text in cells {cells}")

    return NotebookOutputs


def _copy_mathjax(app, exception) -> None:
    """Copy the parts of an offline MathJax 3 the site uses into _static/mathjax."""
    if exception is not None or app.builder.format != "html":
        return
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("The book needs `pip install sphinx-mathjax-offline` (offline MathJax).")
    source = Path(spec.origin).parent / "static" / "mathjax"
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_FILES:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


# The theme's sidebar opens a section with a <summary> holding only an icon: no accessible
# name (axe: summary-name, serious). Name it after the section's own link.
TOGGLE = re.compile(r"(<a [^>]*>([^<]+)</a>\s*<details[^>]*>\s*)<summary>")


def label_toggles(html: str) -> str:
    """Give each sidebar section toggle an accessible name taken from its section's link."""
    return TOGGLE.sub(
        lambda m: f'{m.group(1)}<summary aria-label="Pages of {m.group(2).strip()}">', html
    )


def _label_toggles(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if TOGGLE.search(text):
            page.write_text(label_toggles(text), encoding="utf-8")


def _drop_source_maps(app, exception) -> None:
    """Remove the themes' JavaScript and CSS source maps (a quarter of the site, for debuggers)."""
    if exception is None and app.builder.format == "html":
        for source_map in (Path(app.outdir) / "_static").rglob("*.map"):
            source_map.unlink()


def setup(app) -> dict[str, Any]:
    """Register the book's transform, the offline MathJax and the toggles' names with Sphinx."""
    app.add_config_value("looplab_book_digest", "", "env")
    app.add_post_transform(_post_transform_class())
    app.connect("build-finished", _copy_mathjax)
    app.connect("build-finished", _label_toggles)
    app.connect("build-finished", _drop_source_maps)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# --- the command ---------------------------------------------------------------------------


def build(output: Path = OUTPUT, jobs: str = "1", quiet: bool = True) -> int:
    """Write the source and run Sphinx (warnings are errors); return Sphinx's exit status."""
    from sphinx.cmd.build import build_main

    write_source(SOURCE)
    args = ["-b", "html", "-W", "--keep-going", "-j", jobs, "-d", str(DOCTREES)]
    args += ["-q"] if quiet else []
    status = build_main([*args, str(SOURCE), str(output)])
    index = output / "index.html"
    if status == 0 and index.exists():
        # Sphinx rewrites only the pages whose sources changed, so without this the landing
        # page's time would not say when the book was last built, and tests/book/conftest.py,
        # which rebuilds a book older than its sources, would build it again every run.
        index.touch()
    return status


def main(argv: list[str] | None = None) -> int:
    """Build the book into build/book/html/ and say where it is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", "-j", default="1", help="Sphinx's parallel jobs (default 1)")
    parser.add_argument("--verbose", "-v", action="store_true", help="show Sphinx's progress")
    parser.add_argument(
        "--url", action="store_true", help="print the published address, build nothing"
    )
    args = parser.parse_args(argv)
    if args.url:
        print(book_url())
        return 0
    started = time.perf_counter()
    status = build(OUTPUT, jobs=args.jobs, quiet=not args.verbose)
    if status == 0:
        seconds = time.perf_counter() - started
        print(f"The book is in {OUTPUT.relative_to(ROOT)}/index.html ({seconds:.0f} s).")
    return status


if __name__ == "__main__":
    sys.exit(main())
