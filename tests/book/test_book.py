"""The built book in a real Chromium: pages, links, search, explorers, alt text, accessibility.

Every page is visited once (tests/book/crawl.py) from the landing page, served as GitHub Pages
would serve it; each test reads what that visit saw. Search is also tried from disk (file://).
The content checks run on every page; axe runs on one page of each kind and on every page that
brings a new kind of element (crawl.py says why that covers the book).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.book.crawl import (
    LAYOUT_PAGES,
    PAGE_FACTS,
    PLACEHOLDERS,
    SCREENSHOTS,
    Visit,
    axe_violations,
    book_path,
    needs_axe,
    page_kind,
    parsed,
)
from tests.browser.jupyter import ROOT, WIDGET_VIEW

pytestmark = pytest.mark.browser
LEARNER = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))


def _html(notebook: Path) -> str:
    return notebook.relative_to(ROOT).with_suffix(".html").as_posix()


def _widget_outputs(notebook: Path) -> int:
    nb = nbformat.read(notebook, as_version=4)
    return sum(
        WIDGET_VIEW in output.get("data", {})
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


def test_the_book_holds_every_notebook_the_solutions_and_the_guide(book_visit: Visit) -> None:
    expected = {_html(nb) for nb in LEARNER + SOLUTIONS}
    expected |= {"index.html", "notebooks/solutions/index.html", "docs/instructor-guide.html"}
    missing = sorted(expected - set(book_visit.pages))
    assert not missing, f"pages not reachable from the landing page: {missing}"


def test_every_page_loads_without_console_errors(book_visit: Visit) -> None:
    errors = {path: page.console_errors for path, page in book_visit.pages.items()}
    assert not {p: e for p, e in errors.items() if e}, errors


def test_every_internal_link_resolves(book_visit: Visit, book_html: Path) -> None:
    broken = []
    for path, page in book_visit.pages.items():
        for link in page.links:
            target = book_path(link, book_visit.base)
            if target is None:
                continue
            if not (book_html / target).is_file():
                broken.append(f"{path} -> {link}")
                continue
            fragment = parsed(link)[1]
            if fragment and target in book_visit.pages:
                if fragment not in book_visit.pages[target].ids:
                    broken.append(f"{path} -> {link} (no #{fragment} there)")
    assert not broken, "\n".join(broken)
    assert not book_visit.failed_requests, book_visit.failed_requests


def test_notebooks_link_previous_and_next_in_order(book_visit: Visit) -> None:
    pages = [_html(nb) for nb in LEARNER]
    for before, page, after in zip(pages, pages[1:], pages[2:], strict=False):
        seen = book_visit.pages[page]
        assert seen.previous.endswith("/" + before), (page, seen.previous)
        assert seen.next.endswith("/" + after), (page, seen.next)


# Sphinx shows results one by one and then says it has finished.
SEARCH_DONE = """() => {
  const summary = document.querySelector('#search-results .search-summary');
  return !!summary && /finished|did not match/.test(summary.innerText);
}"""


def _search(page: Any, url: str) -> list[str]:
    page.goto(url + "search.html?q=zero_grad")
    page.wait_for_function(SEARCH_DONE, timeout=60_000)
    hrefs = page.eval_on_selector_all("#search-results ul.search a", "as => as.map(a => a.href)")
    return [re.sub(r"[?#].*$", "", h) for h in hrefs]


@pytest.mark.parametrize("where", ["served", "from disk"])
def test_search_finds_zero_grad_where_it_is_taught(
    where: str, book_page: Any, book_url: str, book_html: Path
) -> None:
    base = book_url if where == "served" else book_html.as_uri() + "/"
    found = _search(book_page, base)
    assert any(h.endswith("notebooks/06_zero_grad_and_accumulation.html") for h in found), found
    assert any(h.endswith("notebooks/05_optimizer_step.html") for h in found), found


def test_explorers_show_their_stored_picture_or_a_note(book_visit: Visit) -> None:
    for notebook in LEARNER + SOLUTIONS:
        page = book_visit.pages[_html(notebook)]
        expected = _widget_outputs(notebook)
        assert page.explorers + page.missing == expected, (notebook.name, page.explorers)
        pictures = [image for image in page.images if image["explorer"]]
        assert len(pictures) == page.explorers
        assert all(image["width"] > 0 for image in pictures), (notebook.name, pictures)
    assert (
        book_visit.pages[_html(LEARNER[5])].explorers + book_visit.pages[_html(LEARNER[5])].missing
        >= 2
    )


def test_no_page_shows_widget_placeholder_text(book_visit: Visit) -> None:
    shown = {
        path: [text for text in PLACEHOLDERS if text in page.text]
        for path, page in book_visit.pages.items()
    }
    assert not {p: t for p, t in shown.items() if t}, shown


def test_every_output_picture_loads_and_has_alt_text(book_visit: Visit) -> None:
    lacking, broken = [], []
    for path, page in book_visit.pages.items():
        for image in page.images:
            if image["output"] and not (image["alt"] or "").strip():
                lacking.append(f"{path}: {image['src'].rsplit('/', 1)[-1]}")
            if image["src"].startswith(book_visit.base) and image["width"] == 0:
                broken.append(f"{path}: {image['src']}")
    assert not broken, broken
    assert not lacking, f"{len(lacking)} output pictures without alt text:\n" + "\n".join(lacking)


def test_every_page_has_unique_ids_named_links_and_alt_on_every_picture(book_visit: Visit) -> None:
    """What axe would say of each page's own content, checked on every page without axe."""
    found = {}
    for path, page in book_visit.pages.items():
        no_alt = [image["src"].rsplit("/", 1)[-1] for image in page.images if image["alt"] is None]
        problems = {
            "duplicate ids": page.duplicate_ids,
            "links without a name": page.nameless_links,
            "pictures without an alt attribute": no_alt,
        }
        if any(problems.values()):
            found[path] = {k: v for k, v in problems.items() if v}
    assert not found, found


def test_axe_finds_no_serious_or_critical_violations(book_visit: Visit) -> None:
    found = {path: page.violations for path, page in book_visit.pages.items() if page.violations}
    assert not found, found


def test_axe_checked_every_kind_of_page_and_every_kind_of_element(book_visit: Visit) -> None:
    axed = {path: page for path, page in book_visit.pages.items() if page.axed}
    kinds = {page_kind(path) for path in book_visit.pages}
    assert kinds == {page_kind(path) for path in axed}
    assert {"index.html", "notebooks/NN.html", "notebooks/solutions/NN.html"} <= kinds, kinds
    every = set().union(*(page.kinds for page in book_visit.pages.values()))
    assert every == set().union(*(page.kinds for page in axed.values()))
    assert set(LAYOUT_PAGES) <= set(axed)
    assert len(axed) < len(book_visit.pages), "the rule should leave repeated pages out"


def test_the_axe_rule_checks_a_page_with_a_new_kind_of_element() -> None:
    seen, pages = {"p", "div.cell"}, {"notebooks/NN.html"}
    assert not needs_axe("notebooks/07_training_loop.html", {"p"}, seen, pages)
    assert needs_axe("notebooks/07_training_loop.html", {"p", "table"}, seen, pages)
    assert needs_axe("notebooks/solutions/07_training_loop_solutions.html", {"p"}, seen, pages)
    assert needs_axe("notebooks/05_optimizer_step.html", {"p"}, seen, pages)  # a layout page


# A picture without alt text (a critical violation for axe: rule image-alt), a link with no
# name and an id used twice.
BROKEN = (
    '<!doctype html><html lang="en"><head><title>Broken</title></head><body><main>'
    '<h1 id="twice">Broken</h1><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="9">'
    '<p id="twice"><a href="#twice"> </a></p></main></body></html>'
)


def test_axe_and_the_content_checks_see_a_broken_page(book_page: Any) -> None:
    """axe runs in this browser and its violations reach the tests; so do the content checks."""
    from axe_playwright_python.sync_playwright import Axe

    book_page.set_content(BROKEN)
    violations = axe_violations(Axe(), book_page, "made-up.html")
    assert any(v.startswith("image-alt (critical)") for v in violations), violations
    facts = book_page.evaluate(PAGE_FACTS)
    assert [image["alt"] for image in facts["images"]] == [None]
    assert [link.endswith("#twice") for link in facts["nameless"]] == [True]
    assert facts["ids"] == ["twice", "twice"]


def test_screenshots_of_the_landing_page_and_notebook_05(book_visit: Visit) -> None:
    for name in ("landing.png", "05.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000, name
