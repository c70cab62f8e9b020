"""The built documentation site: internal links resolve, every public name has its API entry,
and the pages work in a real browser (headless Chromium over the DevTools protocol).

Build the site first (the README's command):
    pip install ".[docs]" && python -m sphinx -W --keep-going -n -b html docs docs/_build/html
These tests skip only when the site is not built; with CLUMSYGRAD_REQUIRE_DOCS=1 (as .ci/run sets
it) a missing site is a failure.  Screenshots go to docs/_build/screenshots/.
"""
from __future__ import annotations

import functools
import html.parser
import http.server
import importlib
import os
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

from _cdp import Browser, find_chromium

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(os.environ.get("CLUMSYGRAD_DOCS_HTML", ROOT / "docs" / "_build" / "html"))
SCREENSHOTS = SITE.parent / "screenshots"
BUILD_COMMAND = 'pip install ".[docs]" && python -m sphinx -W --keep-going -n -b html docs docs/_build/html'

if not (SITE / "index.html").is_file():
    message = f"the documentation site is not built ({SITE / 'index.html'} is missing): {BUILD_COMMAND}"
    if os.environ.get("CLUMSYGRAD_REQUIRE_DOCS") == "1":
        raise RuntimeError(f"CLUMSYGRAD_REQUIRE_DOCS=1 but {message}")
    pytest.skip(message, allow_module_level=True)

# Every public module of the package (save/load are documented as clumsygrad.save/load; optim is
# another name for optimizer).
PUBLIC_MODULES = ["tensor", "math", "activation", "loss", "shape", "selection", "linalg", "optimizer",
                  "lr_scheduler", "nn", "data", "random", "gradcheck", "viz", "grad"]


def test_every_public_module_is_on_the_api_page():
    import inspect

    import clumsygrad

    modules = {n for n in clumsygrad.__all__ if inspect.ismodule(getattr(clumsygrad, n))} - {"optim"}
    assert modules <= set(PUBLIC_MODULES), f"add {sorted(modules - set(PUBLIC_MODULES))} to docs/api.md and here"


class _Page(html.parser.HTMLParser):
    """The ids a page defines and the links (href/src) it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set = set()
        self.links: list = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for attribute in ("href", "src"):
            if attrs.get(attribute) is not None:
                self.links.append(attrs[attribute])


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _pages():
    return sorted(p for p in SITE.rglob("*.html") if "_sources" not in p.parts)


def test_every_internal_link_and_anchor_resolves():
    broken = []
    for page_path in _pages():
        for link in _parse(page_path).links:
            parsed = urlparse(link)
            if parsed.scheme or link.startswith(("//", "mailto:", "javascript:")):
                continue
            fragment = urldefrag(link)[1]
            target_part = parsed.path
            target = (page_path.parent / unquote(target_part)).resolve() if target_part else page_path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page_path.relative_to(SITE)}: {link} (no such file)")
            elif fragment and target.suffix == ".html" and unquote(fragment) not in _parse(target).ids:
                broken.append(f"{page_path.relative_to(SITE)}: {link} (no id {fragment!r} there)")
    assert not broken, "\n".join(broken)


def test_the_pages_of_the_site_are_all_there():
    names = {p.name for p in _pages()}
    for page in ["index", "getting-started", "migrating", "from-numpy", "from-pytorch", "api",
                 "performance", "design", "graph-drawing", "search", "genindex"]:
        assert f"{page}.html" in names, page


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_an_api_entry(module_name):
    module = importlib.import_module(f"clumsygrad.{module_name}")
    ids = _parse(SITE / "api.html").ids
    missing = [name for name in module.__all__ if f"clumsygrad.{module_name}.{name}" not in ids]
    assert not missing, f"clumsygrad.{module_name}: {missing} have no entry in api.html"


def test_the_package_level_functions_have_api_entries():
    import inspect

    import clumsygrad

    ids = _parse(SITE / "api.html").ids
    missing = []
    for name in clumsygrad.__all__:
        obj = getattr(clumsygrad, name)
        if inspect.ismodule(obj):
            continue
        # Documented where it is defined, or under the package, or under a public module.
        spellings = {name, getattr(obj, "__name__", name)}
        if not any(i.startswith("clumsygrad.") and i.rsplit(".", 1)[-1] in spellings for i in ids):
            missing.append(name)
    assert not missing, missing


def test_the_op_table_lists_every_operation():
    from clumsygrad import activation, loss, math, selection, shape

    text = (SITE / "api.html").read_text(encoding="utf-8")
    table = text[text.index('id="operations"'):text.index('id="the-package-backend-graph-control-checkpoints"')]
    for module in (math, activation, loss, shape, selection):
        for name in module.__all__:
            assert f"{module.__name__}.{name}" in table, name


# --------------------------------------------------------------------------- the browser
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test reports failures itself
        pass


@pytest.fixture(scope="module")
def site_url():
    """The built site over HTTP on 127.0.0.1 (search fetches pages, which file:// forbids)."""
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    assert executable, (
        "the site is built but no Chromium was found: install it (Debian: apt-get install -y chromium) "
        "or set CHROMIUM=/path/to/chrome"
    )
    chromium = Browser(executable)
    yield chromium
    chromium.close()


def _screenshot(browser, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    data = browser.screenshot(str(SCREENSHOTS / f"{name}.png"))
    assert data.startswith(b"\x89PNG") and len(data) > 10_000, len(data)


def _assert_no_errors(browser, page):
    assert not browser.errors, f"{page}: " + "\n".join(browser.errors)


def test_the_index_page_renders_in_chromium(browser, site_url):
    browser.errors.clear()
    browser.open(f"{site_url}/index.html")
    assert "clumsygrad" in browser.evaluate("document.title")
    assert browser.evaluate("document.querySelector('h1') && document.querySelector('h1').textContent").startswith("clumsygrad")
    links = browser.evaluate("Array.from(document.querySelectorAll('a.reference.internal')).map(a => a.getAttribute('href'))")
    for page in ["getting-started.html", "migrating.html", "api.html", "performance.html"]:
        assert any(link.startswith(page) for link in links), (page, links)
    assert browser.evaluate("document.querySelector('input[name=q]') !== null")  # the search box
    assert browser.evaluate("document.querySelector('div.highlight pre') !== null")  # highlighted code
    _screenshot(browser, "index")
    _assert_no_errors(browser, "index.html")


def test_the_api_page_renders_in_chromium(browser, site_url):
    browser.errors.clear()
    browser.open(f"{site_url}/api.html")
    for ident in ["clumsygrad.tensor.Tensor", "clumsygrad.loss.cross_entropy", "clumsygrad.optimizer.Adam",
                  "clumsygrad.viz.draw", "clumsygrad.grad.sigmoid_backward"]:
        assert browser.evaluate(f"document.getElementById({ident!r}) !== null"), ident
    rows = browser.evaluate("document.querySelectorAll('#operations table tbody tr').length")
    assert rows >= 30, rows
    _screenshot(browser, "api")
    _assert_no_errors(browser, "api.html")


def test_searching_cross_entropy_finds_it_in_chromium(browser, site_url):
    browser.errors.clear()
    browser.open(f"{site_url}/search.html?q=cross_entropy")
    # Sphinx's search fills the list, then fetches each page's summary and says when it finished.
    summary = browser.wait_until(
        "(document.querySelector('#search-results p.search-summary') || {}).textContent || ''", timeout=30)
    assert "found" in summary and "0 pages" not in summary, summary
    assert browser.evaluate("document.querySelectorAll('#search-results ul.search li').length") >= 1
    hrefs = browser.evaluate("Array.from(document.querySelectorAll('#search-results ul.search li a')).map(a => a.getAttribute('href'))")
    assert any("api.html#clumsygrad.loss.cross_entropy" in href for href in hrefs), hrefs
    _screenshot(browser, "search-cross_entropy")
    _assert_no_errors(browser, "search.html?q=cross_entropy")
