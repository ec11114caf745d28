"""Every chapter reads like a course: it opens with what you will learn and what you need, ends with a
recap and things to try (each with its expected outcome), and shows no test plumbing: nbval's markers
are cell tags, and the set-up cells before a chapter's first idea are collapsed."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.unit

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
HIDDEN = {"hide-input", "hide-cell", "remove-input", "remove-cell"}


def visible_code(notebook) -> list[str]:
    return [
        cell.source
        for cell in notebook.cells
        if cell.cell_type == "code" and not HIDDEN & set(cell.metadata.get("tags", []))
    ]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_and_closes_like_a_course(path):
    cells = nbformat.read(path, as_version=4).cells
    opening, closing = cells[0].source, cells[-1].source
    assert opening.startswith("# ") and "What you will learn" in opening and "What you need" in opening
    assert "## Recap" in closing and "## Try this" in closing
    tries = closing.split("## Try this", 1)[1]
    assert tries.count("*Expected:*") >= 1


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_test_plumbing_on_the_page(path):
    notebook = nbformat.read(path, as_version=4)
    assert not [cell.source for cell in notebook.cells if "NBVAL_" in cell.source]
    first = visible_code(notebook)[0]
    # The first code a reader sees is about the chapter, not bookkeeping.
    assert "atexit" not in first and "ExitStack" not in first and "free_ports" not in first


def test_the_monitoring_chapter_starts_with_monitoring():
    notebook = nbformat.read(BOOK / "08_monitor.ipynb", as_version=4)
    first = visible_code(notebook)[0]
    assert "metrics" in first and not first.lstrip().startswith(("import", "from"))
