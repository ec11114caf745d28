"""The book as a reader sees it: built, then every page of its table of contents opened in headless
Chromium at 1280 px (attrition_tools.book_check). The build renders the outputs committed in the
notebooks, which nbval executes in the same test run; `make book` is the build that executes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from attrition_tools import book_check

pytestmark = pytest.mark.book


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    return book_check.build(tmp_path_factory.mktemp("book"))


def test_every_page_reads_well_in_a_browser(html):
    pages = book_check.toc_pages()
    found = book_check.check(html, pages, book_check.SCREENSHOT_DIR)
    problems = {page: listed for page, listed in found.items() if listed}
    assert not problems, "\n".join(f"{page}: {'; '.join(listed)}" for page, listed in problems.items())
    assert set(pages) | {"search"} == set(found)
    for page in pages:
        assert (book_check.SCREENSHOT_DIR / f"{page.replace('/', '__')}.png").stat().st_size > 10_000


def test_the_search_check_tells_a_hit_from_nothing(html):
    with book_check.serve(html) as base, book_check.browser() as context:
        page = context.new_page()
        assert book_check.search_hits(page, base, "outlier") > 0
        assert book_check.search_hits(page, base, "zzqxjv") == 0
