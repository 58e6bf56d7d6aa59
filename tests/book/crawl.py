"""Visit every page of the built book once, from the landing page, and record what it shows."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlparse

from tests.browser.jupyter import ROOT

SCREENSHOTS = ROOT / "build" / "book-screenshots"
SERIOUS = {"serious", "critical"}
# Text a page shows when a widget did not render: ipywidgets' messages, or a widget's repr.
PLACEHOLDERS = [
    "Error displaying widget",
    "Loading widget",
    "Widget Javascript not detected",
    "application/vnd.jupyter.widget-view+json",
    "Explorer()",
    "LiveLossPlot()",
    "VBox(children=",
]

# Where axe runs. axe costs more than opening the page (about a second a page on a busy 2-core
# machine), and the book's 30 pages come from a few templates filled with a few kinds of content.
# What axe finds depends on the template and on the kinds of elements in it, not on which
# notebook the text came from. So axe's rules run, whole, on
# - one page of each kind (`page_kind`, its template: header, sidebars, footer): the landing
#   page, the instructor guide, the solutions index, a learner notebook and a solutions notebook
#   (05's, in LAYOUT_PAGES), and the first of any other kind a page links to (none today: the
#   search page is reached through the search box, which test_book.py's search test drives);
# - every page that holds a kind of element that no page checked so far held (PAGE_FACTS'
#   `kinds`: tag, classes and role of each element; inside code highlighting, maths and SVG
#   pictures only the outer element): today that adds the first notebooks and solutions (the
#   sidebar marks where they are), the notebooks with the first maths, explorer pictures, tables
#   and HTML outputs, and other code styles; a notebook that brings new content is checked with
#   no change here;
# - the pages LAYOUT_PAGES names.
# So every kind of element on every page has been through axe on a page of the same template.
# What depends on a page's own text is checked on every page without axe (tests/book/
# test_book.py): alt text, link names, unique ids, links and anchors, console errors,
# placeholder text.
#
# Three axe rules measure the laid-out page, node by node: color-contrast (about 30 s for notebook
# 05 or the instructor guide on a busy 2-core machine), target-size and link-in-text-block.
# Their answers depend on the stylesheet, the same on every page, and on the kinds of content,
# so they run where every kind is: the landing page (prose, lists, a table, code, badges), a
# solution (code cells and their outputs, whole) and notebook 05's outputs (text, HTML and figure
# outputs, explorer pictures with captions). Every other rule runs on the pages chosen above.
LAYOUT_RULES = ["color-contrast", "target-size", "link-in-text-block"]
LAYOUT_PAGES = {
    "index.html": None,
    "notebooks/solutions/05_optimizer_step_solutions.html": None,
    "notebooks/05_optimizer_step.html": {"include": [[".cell_output"]]},
}


def page_kind(path: str) -> str:
    """The template a page is made from: its path, with a notebook's name as NN."""
    return re.sub(r"[0-9][0-9]_[^/]*\.html$", "NN.html", path)


def needs_axe(path: str, kinds: set[str], checked: set[str], checked_pages: set[str]) -> bool:
    """Whether axe runs on `path`: a new kind of page, a new kind of element, or a layout page."""
    return path in LAYOUT_PAGES or page_kind(path) not in checked_pages or not kinds <= checked


def axe_violations(axe: Any, page: Any, path: str) -> list[str]:
    """axe's serious and critical violations on the open page (`path`: its place in the book)."""
    options: dict = {"resultTypes": ["violations"]}
    if path in LAYOUT_PAGES and LAYOUT_PAGES[path] is None:  # every rule on the whole page
        violations = axe.run(page, options=options).response["violations"]
    else:
        skip = {rule: {"enabled": False} for rule in LAYOUT_RULES}
        violations = axe.run(page, options={**options, "rules": skip}).response["violations"]
    if path in LAYOUT_PAGES and LAYOUT_PAGES[path] is not None:
        only = {**options, "runOnly": {"type": "rule", "values": LAYOUT_RULES}}
        violations += axe.run(page, LAYOUT_PAGES[path], only).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {[', '.join(n['target']) for n in v['nodes'][:3]]}"
        for v in violations
        if v.get("impact") in SERIOUS
    ]


PAGE_FACTS = """() => ({
  links: Array.from(document.querySelectorAll('a[href]'), a => a.href),
  ids: Array.from(document.querySelectorAll('[id]'), e => e.id),
  outputs: Array.from(document.querySelectorAll('.cell_output'), e => e.innerText).join('\\n'),
  previous: (document.querySelector('a.left-prev') || {}).href || '',
  next: (document.querySelector('a.right-next') || {}).href || '',
  images: Array.from(document.querySelectorAll('img'), img => ({
    src: img.currentSrc || img.src,
    alt: img.getAttribute('alt'),
    width: img.naturalWidth,
    output: !!img.closest('.cell_output, figure.explorer'),
    explorer: !!img.closest('figure.explorer'),
  })),
  explorers: document.querySelectorAll('figure.explorer').length,
  missing: document.querySelectorAll('.explorer-missing').length,
  // Links a screen reader cannot name: no text, no label, no title, no picture with alt text.
  nameless: Array.from(document.querySelectorAll('a[href]'), a => a).filter(a =>
    !a.textContent.trim() && !(a.getAttribute('aria-label') || '').trim()
    && !(a.getAttribute('title') || '').trim()
    && !Array.from(a.querySelectorAll('img[alt]'), i => i.alt.trim()).join('')
  ).map(a => a.href),
  kinds: [...new Set(Array.from(document.querySelectorAll('body *'))
    .filter(e => !e.matches('.highlight *, mjx-container *, svg *'))
    .map(e => e.localName + [...e.classList].sort().map(c => '.' + c).join('')
      + (e.getAttribute('role') ? `[role=${e.getAttribute('role')}]` : '')))],
})"""


@dataclass
class Page:
    """What one page of the book showed (`text`: the text of its notebook outputs)."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    duplicate_ids: list[str] = field(default_factory=list)
    nameless_links: list[str] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    axed: bool = False
    text: str = ""
    previous: str = ""
    next: str = ""
    images: list[dict] = field(default_factory=list)
    explorers: int = 0
    missing: int = 0
    violations: list[str] = field(default_factory=list)


@dataclass
class Visit:
    """Every page seen, by its path inside the book, and every failed request."""

    base: str
    pages: dict[str, Page] = field(default_factory=dict)
    failed_requests: list[str] = field(default_factory=list)


def book_path(url: str, base: str) -> str | None:
    """The path of `url` inside the book (index.html for a folder), or None if it is outside."""
    url = urldefrag(url).url.split("?")[0]
    if not url.startswith(base):
        return None
    path = unquote(url[len(base) :])
    return path + "index.html" if path == "" or path.endswith("/") else path


MATHJAX_DONE = """() => window.MathJax && MathJax.startup
  ? MathJax.startup.promise.then(() => true) : true"""


def crawl(page: Any, base: str, html: Path) -> Visit:
    """Open every .html page reachable from `base`'s landing page; check with axe where
    `needs_axe` says (see the note above LAYOUT_RULES).

    Console errors and failed requests are recorded from navigation until axe starts: axe
    fetches stylesheets itself to read them, and its own failed fetches say nothing of the book.
    """
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    visit = Visit(base)
    errors: list[str] = []
    recording = [True]

    def note_console(message: Any) -> None:
        if recording[0] and message.type == "error":
            errors.append(message.text)

    def note_error(error: Any) -> None:
        if recording[0]:
            errors.append(str(error))

    def note_response(response: Any) -> None:
        if recording[0] and response.url.startswith(base) and response.status >= 400:
            visit.failed_requests.append(f"{response.status} {response.url}")

    def note_failure(request: Any) -> None:
        if recording[0]:
            visit.failed_requests.append(f"failed {request.url}")

    listeners = {
        "console": note_console,
        "pageerror": note_error,
        "response": note_response,
        "requestfailed": note_failure,
    }
    for event, listener in listeners.items():
        page.on(event, listener)
    queue = ["index.html"]
    checked: set[str] = set()
    checked_pages = {page_kind(path) for path in LAYOUT_PAGES}  # axe runs on those anyway
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        while queue:
            path = queue.pop(0)
            if path in visit.pages:
                continue
            errors.clear()
            recording[0] = True
            page.goto(urljoin(base, path), wait_until="load")
            page.evaluate(MATHJAX_DONE)
            facts = page.evaluate(PAGE_FACTS)
            seen = Page(urljoin(base, path), links=facts["links"], ids=set(facts["ids"]))
            seen.duplicate_ids = sorted(i for i, n in Counter(facts["ids"]).items() if n > 1)
            seen.nameless_links, seen.kinds = facts["nameless"], set(facts["kinds"])
            seen.text, seen.images = facts["outputs"], facts["images"]
            seen.explorers, seen.missing = facts["explorers"], facts["missing"]
            seen.previous, seen.next = facts["previous"], facts["next"]
            _screenshot(page, path)
            seen.console_errors = list(errors)
            recording[0] = False
            if needs_axe(path, seen.kinds, checked, checked_pages):
                seen.violations, seen.axed = axe_violations(axe, page, path), True
                checked |= seen.kinds
                checked_pages.add(page_kind(path))
            visit.pages[path] = seen
            for link in seen.links:
                target = book_path(link, base)
                if target and target.endswith(".html") and target not in visit.pages:
                    if (html / target).is_file():
                        queue.append(target)
    finally:
        for event, listener in listeners.items():
            page.remove_listener(event, listener)
    return visit


def _screenshot(page: Any, path: str) -> None:
    """The landing page, and notebook 05 at its first explorer, under build/book-screenshots."""
    if path == "index.html":
        page.screenshot(path=str(SCREENSHOTS / "landing.png"))
    elif path.startswith("notebooks/05_"):
        explorer = page.locator("figure.explorer, .explorer-missing").first
        if explorer.count():
            explorer.scroll_into_view_if_needed()
            page.evaluate("() => window.scrollBy(0, -120)")
        page.screenshot(path=str(SCREENSHOTS / "05.png"))


def parsed(url: str) -> tuple[str, str]:
    """(url without fragment, fragment)."""
    clean, fragment = urldefrag(url)
    return clean, fragment


def is_local(url: str) -> bool:
    """True for an address on this machine (the static server or a file)."""
    scheme = urlparse(url).scheme
    return scheme == "file" or urlparse(url).hostname == "127.0.0.1"
