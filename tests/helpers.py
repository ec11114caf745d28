"""What several test modules share (imported as ``helpers``; conftest.py holds only fixtures and
session set-up)."""

from __future__ import annotations

from pathlib import Path

#: The repository's root.
ROOT = Path(__file__).resolve().parents[1]
#: The shared read-only data folder beside the checkout (CI, developers).
SHARED_DATA = ROOT.parent / "shared" / "data"
#: A short anchor budget for the test server, so that tests can watch the budget hold.
ANCHOR_BUDGET_S = 3.0
