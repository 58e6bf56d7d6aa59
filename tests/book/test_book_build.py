"""tools/book.py without a browser: the landing page, links, alt text and the explorer figures.

The last test builds a one-notebook book in a temporary folder, with output bundles shaped as
the notebooks store them (an explorer: widget view, one-line caption, PNG; a figure: PNG with
alt text in its metadata), and reads the HTML.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

from tools import book
from tools.sync_notebooks import repository

# sphinx-book-theme 1.4 uses an API Sphinx 9 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*HandleFootnoteTransform")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAFklEQVR4nGP8z8DwnwEKmBgYGBgYAAAd"
    "BAIBrQkWJAAAAABJRU5ErkJggg=="
)
PAGES = [
    "notebooks/00_setup_check.ipynb",
    "notebooks/05_optimizer_step.ipynb",
    "notebooks/solutions/05_optimizer_step_solutions.ipynb",
    "docs/instructor-guide.md",
    "notebooks/solutions/index.md",
]


def test_the_landing_page_is_readmes_introduction_with_the_books_contents() -> None:
    readme = (book.ROOT / "README.md").read_text()
    text, _ = book.landing_markdown(readme, book._book_pages() + [book.SOLUTIONS_INDEX])
    assert text.startswith("# Loop Lab")
    assert "Three ways in" in text and "| 05 |" in text
    assert "](notebooks/05_optimizer_step.ipynb)" in text
    assert "notebooks:end" not in text and "## The explorers" not in text
    assert "](notebooks/solutions/index.md)" in text
    for caption in ("Notebooks", "Solutions", "For instructors"):
        assert f":caption: {caption}" in text


def test_the_landing_page_needs_the_table_marker() -> None:
    with pytest.raises(ValueError, match="notebooks:end"):
        book.landing_markdown("# Loop Lab\n\nno table here\n", PAGES)


def test_links_to_book_pages_stay_and_others_go_to_github() -> None:
    owner, name = repository()
    markdown = (
        "[05](../notebooks/05_optimizer_step.ipynb) [make](../Makefile) "
        "[guide](authoring-notebooks.md#how-long) [tools](../tools/) [web](https://example.org) "
        "[here](#top) ![shot](images/training_step_explorer.png)"
    )
    text, images = book.rewrite_links(markdown, "docs/instructor-guide.md", set(PAGES))
    blob = f"https://github.com/{owner}/{name}/blob/main"
    assert "[05](../notebooks/05_optimizer_step.ipynb)" in text
    assert f"[make]({blob}/Makefile)" in text
    assert f"[guide]({blob}/docs/authoring-notebooks.md#how-long)" in text
    assert f"[tools](https://github.com/{owner}/{name}/tree/main/tools)" in text
    assert "[web](https://example.org)" in text and "[here](#top)" in text
    if (book.ROOT / "docs/images/training_step_explorer.png").exists():
        assert images == {"docs/images/training_step_explorer.png"}


def _output(text: str, *, png: bool = True, widget: bool = False, alt: str | None = None):
    data = {"text/plain": text}
    if png:
        data["image/png"] = PNG
    if widget:
        data[WIDGET_VIEW] = {"version_major": 2, "version_minor": 0, "model_id": "abc"}
    metadata = {"image/png": {"alt": alt}} if alt is not None else {}
    return nbformat.v4.new_output("display_data", data=data, metadata=metadata)


def test_alt_text_comes_from_metadata_then_a_descriptive_text_plain() -> None:
    assert book.figure_alt(_output("<Figure size 600x360 with 1 Axes>", alt="A falling loss")) == (
        "A falling loss"
    )
    assert book.figure_alt(_output("<Figure size 600x360 with 1 Axes>")) == ""
    assert (
        book.figure_alt(_output("The loss falls for 30 steps.")) == "The loss falls for 30 steps."
    )


def test_an_explorers_caption_is_its_text_plain_unless_that_is_a_repr() -> None:
    assert book.explorer_caption(_output("DemoExplorer: drag it.\nmore", widget=True)) == (
        "DemoExplorer: drag it."
    )
    assert book.explorer_caption(_output("DemoExplorer()", widget=True)) == ""


def test_live_links_open_the_notebook_from_pyprojects_repository() -> None:
    owner, name = repository()
    (colab_label, colab), (binder_label, binder) = book.live_links("notebooks/05_optimizer_step")
    assert colab == (
        f"https://colab.research.google.com/github/{owner}/{name}/blob/main/"
        "notebooks/05_optimizer_step.ipynb"
    )
    assert binder.startswith(f"https://mybinder.org/v2/gh/{owner}/{name}/main?urlpath=lab/tree/")
    assert "Colab" in colab_label and "Binder" in binder_label


def test_the_books_address_comes_from_pyprojects_repository() -> None:
    owner, name = repository()
    assert book.book_url() == f"https://{owner.lower()}.github.io/{name}/"


def test_sidebar_toggles_get_a_name_from_their_section() -> None:
    html = '<a class="reference internal" href="x.html">Worked solutions</a><details><summary>'
    assert 'aria-label="Pages of Worked solutions"' in book.label_toggles(html)


def _demo_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Demo\n\nA page with an explorer and a figure."),
        nbformat.v4.new_code_cell("explorer", execution_count=1),
        nbformat.v4.new_code_cell("figure", execution_count=2),
        nbformat.v4.new_code_cell("old_explorer", execution_count=3),
    ]
    nb.cells[1].outputs = [_output("DemoExplorer: drag the slider.", widget=True)]
    nb.cells[2].outputs = [_output("<Figure size 6x4 with 1 Axes>", alt="A line going up")]
    nb.cells[3].outputs = [_output("DemoExplorer()", png=False, widget=True)]
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def demo_html(tmp_path_factory: pytest.TempPathFactory) -> BeautifulSoup:
    from sphinx.cmd.build import build_main

    tmp = tmp_path_factory.mktemp("book")
    source, output = tmp / "src", tmp / "html"
    _demo_notebook(source / "notebooks" / "demo.ipynb")
    (source / "conf.py").write_text(book._conf_py())
    (source / "_static").mkdir()
    (source / "_static" / "book.css").write_text(book.BOOK_CSS)
    (source / "index.md").write_text("# Home\n\n```{toctree}\nnotebooks/demo\n```\n")
    status = build_main(
        ["-b", "html", "-W", "-q", "-d", str(tmp / "doctrees"), str(source), str(output)]
    )
    assert status == 0
    html = (output / "notebooks" / "demo.html").read_text()
    assert (output / "_static" / "mathjax" / "tex-chtml.js").is_file()
    return BeautifulSoup(html, "html.parser")


@pytest.mark.slow
def test_an_explorer_shows_its_picture_caption_and_live_links(demo_html: BeautifulSoup) -> None:
    owner, name = repository()
    figure = demo_html.select_one("figure.explorer")
    assert figure is not None
    image = figure.find("img")
    assert image["alt"] == "Picture of DemoExplorer as stored"
    assert image["src"].endswith(".png")
    caption = figure.find("figcaption").get_text(" ", strip=True)
    assert caption.startswith("DemoExplorer: drag the slider.")
    links = [a["href"] for a in figure.select("figcaption a.reference.external")]
    assert links[0].endswith(f"/{owner}/{name}/blob/main/notebooks/demo.ipynb")
    assert links[1].startswith(f"https://mybinder.org/v2/gh/{owner}/{name}/main")


@pytest.mark.slow
def test_no_widget_view_or_repr_reaches_the_page(demo_html: BeautifulSoup) -> None:
    html = str(demo_html)
    assert WIDGET_VIEW not in html
    assert "DemoExplorer()" not in html
    missing = demo_html.select_one(".explorer-missing")
    assert missing is not None and "Run it live in Colab" in missing.get_text()


@pytest.mark.slow
def test_a_figure_carries_the_alt_text_of_its_metadata(demo_html: BeautifulSoup) -> None:
    images = [img for img in demo_html.select(".cell_output img") if not img.find_parent("figure")]
    assert [img["alt"] for img in images] == ["A line going up"]


def test_a_build_marks_the_landing_page_as_new_even_when_sphinx_rewrote_nothing(
    tmp_path, monkeypatch
):
    """tests/book/conftest.py rebuilds a book whose index.html is older than its sources."""
    import os

    import sphinx.cmd.build

    index = tmp_path / "index.html"
    index.write_text("<html></html>")
    os.utime(index, (1_000_000_000, 1_000_000_000))  # 2001: older than any source
    monkeypatch.setattr(book, "write_source", lambda source: None)
    monkeypatch.setattr(sphinx.cmd.build, "build_main", lambda args: 0)  # nothing rewritten
    assert book.build(tmp_path) == 0
    assert index.stat().st_mtime > 1_000_000_000
    os.utime(index, (1_000_000_000, 1_000_000_000))
    monkeypatch.setattr(sphinx.cmd.build, "build_main", lambda args: 1)  # a failed build
    assert book.build(tmp_path) == 1
    assert index.stat().st_mtime == 1_000_000_000, "a failed build must not look up to date"
