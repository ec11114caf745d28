"""The sliding drift window's schedule: due every N rows, never overlapping, at most once per interval."""

from __future__ import annotations

import numpy as np
import pytest

from attrition.contract.trust import MIN_DRIFT_ROWS
from attrition_runtime.monitoring import DriftWindow

pytestmark = pytest.mark.unit


def _rows(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n * 30, dtype=float).reshape(n, 30), np.zeros(n, dtype=bool)


def test_due_every_n_rows_once_the_window_can_be_tested():
    window = DriftWindow(size=60, every=10, min_interval_s=0)
    due = [window.add(*_rows(1)) for _ in range(MIN_DRIFT_ROWS)]
    assert due[-1] is not None and all(d is None for d in due[:-1])  # not before 30 rows
    window.tested(None)
    assert [window.add(*_rows(1)) is not None for _ in range(10)] == [False] * 9 + [True]


def test_keeps_only_the_last_rows_and_their_outlier_rate():
    window = DriftWindow(size=40, every=1, min_interval_s=0)
    codes, outliers = _rows(100)
    outliers[-10:] = True
    snapshot, outlier_rate = window.add(codes, outliers)
    assert len(snapshot) == 40 and (snapshot == codes[-40:]).all()
    assert outlier_rate == pytest.approx(10 / 40)


def test_tests_never_overlap_and_respect_the_interval():
    window = DriftWindow(size=40, every=1, min_interval_s=0)
    assert window.add(*_rows(40)) is not None
    assert window.add(*_rows(5)) is None  # the first test is still running
    window.tested(None)
    assert window.add(*_rows(1)) is not None
    spaced = DriftWindow(size=40, every=1, min_interval_s=3600)
    assert spaced.add(*_rows(40)) is not None
    spaced.tested(None)
    assert spaced.add(*_rows(40)) is None  # due by rows, but within the interval


def test_window_must_hold_enough_rows_for_a_test():
    with pytest.raises(ValueError, match="at least"):
        DriftWindow(size=MIN_DRIFT_ROWS - 1, every=1)
