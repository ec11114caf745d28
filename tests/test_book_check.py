"""The book checker itself: on small pages made here, it finds a code line too long for its box, a
missing image, a dead link or anchor and a traceback, and finds nothing on a page without them."""

from __future__ import annotations

from pathlib import Path

import pytest

from attrition_tools import book_check

pytestmark = pytest.mark.book

CODE_LINE = 'server = Server(ensure_model(), ports=free_ports(), env={"ATTRITION_DRIFT_WINDOW": "100"})'
PAGE = """<!doctype html><html><head>{css}</head><body>
<article style="width: 600px"><h2 id="top">A page</h2>
<div class="cell_input"><div class="highlight"><pre>{code}</pre></div></div>
{extra}<a href="good.html#top">back</a></article></body></html>"""


def write_page(folder: Path, name: str, code: str, extra: str = "", css: bool = False) -> str:
    link = '<link rel="stylesheet" href="custom.css">' if css else ""
    (folder / f"{name}.html").write_text(PAGE.format(css=link, code=code, extra=extra))
    return name


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "custom.css").write_text((book_check.BOOK_DIR / "_static" / "custom.css").read_text())
    write_page(tmp_path, "good", "x = 1")
    return tmp_path


def test_a_page_without_faults_passes(site):
    assert book_check.check(site, ["good"]) == {"good": []}


def test_a_code_line_too_long_for_its_box_fails(site):
    write_page(site, "long", "\n".join([CODE_LINE] * 2))
    (problem,) = book_check.check(site, ["long"])["long"]
    assert problem.startswith("too wide: pre") and "server = Server(ensure_model()" in problem


def test_the_books_stylesheet_wraps_the_same_line(site):
    write_page(site, "wrapped", CODE_LINE, css=True)
    assert book_check.check(site, ["wrapped"]) == {"wrapped": []}


def test_a_missing_image_a_dead_link_and_a_traceback_fail(site):
    extra = (
        '<img src="nowhere.png"><a href="missing.html">gone</a><a href="good.html#nothing">no anchor</a>'
        '<div class="cell_output"><div class="output stderr"><pre>Traceback (most recent call last):'
        "</pre></div></div>"
    )
    write_page(site, "broken", "x = 1", extra=extra)
    problems = book_check.check(site, ["broken"])["broken"]
    assert "image not loaded: nowhere.png" in problems
    assert "link to a missing page: missing.html" in problems
    assert "link to a missing anchor: good.html#nothing" in problems
    assert "the page shows a Traceback" in problems
    assert any(p.startswith("error output: Traceback") for p in problems)


def test_the_table_of_contents_lists_every_chapter():
    pages = book_check.toc_pages()
    chapters = sorted(p.stem for p in book_check.BOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    assert pages[0] == "intro" and set(chapters) <= set(pages)
