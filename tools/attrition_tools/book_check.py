"""Open every page of the built book in headless Chromium, as a reader would, and list what is wrong.

At a 1280 px window: a code or output block whose content is wider than its box (it would need
horizontal scrolling), an image that did not load, an internal link or anchor that resolves to
nothing, a traceback or error output, and a search for "drift" that finds nothing. A full-page
screenshot of every page is saved for people to look at (CI keeps them as an artifact).

Chromium is Debian's (``make chromium``), driven by the Playwright driver that the ``playwright``
wheel carries: Playwright's own browser download is never used.

``python -m attrition_tools.book_check [--build] [--screenshots DIR]`` checks ``book/_build/html``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from attrition import config

BOOK_DIR = config.project_home() / "book"
HTML_DIR = BOOK_DIR / "_build" / "html"
SCREENSHOT_DIR = BOOK_DIR / "_build" / "screenshots"
#: Debian's package; another Chromium or Chrome through $ATTRITION_CHROMIUM.
CHROMIUM = os.environ.get("ATTRITION_CHROMIUM", "/usr/bin/chromium")
#: Headless as root in a sandbox-less container, and nothing that reaches for the network by itself.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH, HEIGHT = 1280, 900
SEARCH_TERM = "drift"
#: Blocks whose content must fit their box: code cells, their outputs, code in Markdown.
BLOCKS = "pre, div.cell_output, div.output, div.highlight"

# The innermost block that overflows: a cell's box around an overflowing <pre> is not reported again.
_OVERFLOWING = """selector => {
  const wide = Array.from(document.querySelectorAll(selector))
    .filter(el => el.scrollWidth > el.clientWidth + 1);
  return wide.filter(el => !wide.some(other => other !== el && el.contains(other))).map(el => {
    const lines = (el.innerText || "").split("\\n");
    const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
    return `${el.tagName.toLowerCase()}.${el.className.split(" ")[0]}: content ${el.scrollWidth} px `
      + `in a ${el.clientWidth} px box (${longest.trim().slice(0, 70)}...)`;
  });
}"""
_BROKEN_IMAGES = """() => Array.from(document.images)
  .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.getAttribute("src"))"""
_ERROR_OUTPUTS = """() => Array.from(document.querySelectorAll(
    "div.output.traceback, div.output.error, div.output.stderr"))
  .map(el => (el.innerText || "").trim().split("\\n")[0].slice(0, 80))"""
_LINKS = "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"


def toc_pages(book_dir: Path = BOOK_DIR) -> list[str]:
    """Every page the table of contents lists (root, chapters, parts, sections), in reading order."""
    toc = yaml.safe_load((book_dir / "_toc.yml").read_text())
    pages: list[str] = []

    def walk(node) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    pages.append(str(Path(node[key]).with_suffix("")))
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key, []))

    walk(toc)
    return pages


def build(out_dir: Path, book_dir: Path = BOOK_DIR, execute: bool = False) -> Path:
    """Build the book into ``out_dir`` with ``jupyter-book -W``; by default from the outputs committed
    in the notebooks (nbval executes every chapter in the same ``make test``). Returns the HTML folder."""
    settings = yaml.safe_load((book_dir / "_config.yml").read_text())
    if not execute:
        settings["execute"]["execute_notebooks"] = "off"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "_config.yml").write_text(yaml.safe_dump(settings))
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [jupyter_book, "build", "-W", "--keep-going", "--config", out_dir / "_config.yml"]
    done = subprocess.run(
        [*map(str, command), "--path-output", str(out_dir), str(book_dir)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return out_dir / "_build" / "html"


@contextlib.contextmanager
def serve(html_dir: Path) -> Iterator[str]:
    """The HTML folder over HTTP on a free port of 127.0.0.1 (the search page loads its index by
    script, which a file:// page may not); stopped on exit."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def browser() -> Iterator[object]:
    """Headless Chromium, a fresh profile, closed on exit."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="attrition-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": WIDTH, "height": HEIGHT},
        )
        try:
            yield context
        finally:
            context.close()


@functools.cache
def _anchors(path: Path) -> frozenset[str]:
    text = path.read_text(errors="replace")
    return frozenset(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", text))


def link_problems(hrefs: list[str], base: str, html_dir: Path) -> list[str]:
    """Internal links whose page does not exist, or whose #anchor is on no element of that page."""
    problems = []
    for href in sorted(set(hrefs)):
        if not href.startswith(base):
            continue  # another site: not ours to check offline
        parts = urlsplit(href)
        relative = unquote(parts.path)[len(urlsplit(base).path) :] or "index.html"
        target = html_dir / relative
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"link to a missing page: {relative}")
        elif parts.fragment and unquote(parts.fragment) not in _anchors(target):
            problems.append(f"link to a missing anchor: {relative}#{parts.fragment}")
    return problems


def page_problems(page, url: str, base: str, html_dir: Path, screenshot: Path | None) -> list[str]:
    """What is wrong with one page, as the browser shows it at 1280 px."""
    response = page.goto(url, wait_until="load")
    if response is None or not response.ok:
        return [f"cannot open: HTTP {response.status if response else 'no response'}"]
    problems = [f"too wide: {block}" for block in page.evaluate(_OVERFLOWING, BLOCKS)]
    problems += [f"image not loaded: {src}" for src in page.evaluate(_BROKEN_IMAGES)]
    problems += [f"error output: {first}" for first in page.evaluate(_ERROR_OUTPUTS)]
    if "Traceback" in page.inner_text("body"):
        problems.append("the page shows a Traceback")
    problems += link_problems(page.evaluate(_LINKS), base, html_dir)
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=True)
    return problems


def search_hits(page, base: str, term: str = SEARCH_TERM) -> int:
    """How many pages the book's own search page lists for ``term``."""
    page.goto(f"{base}search.html?q={term}", wait_until="load")
    # Sphinx's search page creates the summary empty and writes it when the search has finished.
    page.wait_for_function(
        "() => (document.querySelector('#search-results .search-summary')?.innerText || '').trim()",
        timeout=30_000,
    )
    return page.locator("#search-results ul.search li").count()


def check(html_dir: Path, pages: list[str], screenshots: Path | None = None) -> dict[str, list[str]]:
    """Problems per page (every page listed, an empty list when it is fine), and the search's."""
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[str]] = {}
    with serve(html_dir) as base, browser() as context:
        page = context.new_page()
        for name in pages:
            shot = screenshots / f"{name.replace('/', '__')}.png" if screenshots else None
            found[name] = page_problems(page, f"{base}{name}.html", base, html_dir, shot)
        if (html_dir / "search.html").exists():
            hits = search_hits(page, base)
            found["search"] = [] if hits else [f'searching for "{SEARCH_TERM}" finds nothing']
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="book_check", description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=HTML_DIR, help="the built book's HTML folder")
    parser.add_argument("--build", type=Path, help="first build the book (no execution) into this folder")
    parser.add_argument("--screenshots", type=Path, default=SCREENSHOT_DIR)
    args = parser.parse_args(argv)
    html = build(args.build) if args.build else args.html
    found = check(html, toc_pages(), args.screenshots)
    for name, problems in found.items():
        print(f"{name}: {'ok' if not problems else ''}")
        for problem in problems:
            print(f"  {problem}")
    print(f"screenshots: {args.screenshots}")
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
