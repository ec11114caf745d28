"""The scipy drift test against alibi-detect's TabularDrift.predict, the reference it replaces in
serving and in the open trust backend: same p-values, distances and verdicts, to 1e-9."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attrition.backends.alibi import detectors
from attrition.contract.schema import CATEGORICAL, FEATURES, to_codes, validate_features
from attrition.contract.trust import MIN_DRIFT_ROWS
from attrition.serving.drift import DriftTest
from attrition.training import data
from attrition.training.search import split

pytestmark = pytest.mark.unit

SEED = 0
#: Measured: 0 (both round to float32 from the same scipy distributions).
TOLERANCE = 1e-9
#: 2,000 is more than the 1,176 reference rows (the K-S sample sizes swap roles) and than the data.
SIZES = (30, 100, 1000, 2000)


@pytest.fixture(scope="module")
def loaded() -> tuple[pd.DataFrame, pd.Series]:
    return data.load()


@pytest.fixture(scope="module")
def everyone(loaded) -> pd.DataFrame:
    """All 1,470 rows, validated: batches are drawn from them."""
    return validate_features(loaded[0])


@pytest.fixture(scope="module")
def reference(loaded) -> np.ndarray:
    """The training split, as the bundle keeps it."""
    return to_codes(validate_features(split(*loaded, SEED)[0]))


@pytest.fixture(scope="module")
def tests(reference):
    """Ours and alibi-detect's, fitted once on the same reference."""
    return DriftTest(reference), detectors.fit_drift(reference)


def _batch(rows_of: pd.DataFrame, rows: int, shifted: bool) -> np.ndarray:
    """Rows of the data set (drawn with replacement beyond its 1,470), optionally shifted as
    tests/test_bundle.py shifts them: incomes tripled, everyone on overtime."""
    sample = rows_of.sample(rows, replace=rows > len(rows_of), random_state=rows)
    if shifted:
        sample = sample.assign(MonthlyIncome=sample["MonthlyIncome"] * 3, OverTime="Yes")
    return to_codes(sample)


def _assert_same_report(ours, theirs) -> None:
    assert list(ours.p_values) == list(theirs.p_values) == list(FEATURES)
    for feature in FEATURES:
        assert ours.p_values[feature] == pytest.approx(theirs.p_values[feature], abs=TOLERANCE), feature
        assert ours.distances[feature] == pytest.approx(theirs.distances[feature], abs=TOLERANCE), feature
    assert ours.is_drift == theirs.is_drift
    assert ours.threshold == pytest.approx(theirs.threshold, rel=1e-12)
    assert ours.drifted == theirs.drifted
    assert ours.rows == theirs.rows


@pytest.mark.parametrize("shifted", [False, True], ids=["unshifted", "shifted"])
@pytest.mark.parametrize("rows", SIZES)
def test_report_equals_tabular_drift(tests, everyone, rows, shifted):
    ours, alibi = tests
    codes = _batch(everyone, rows, shifted)
    report, expected = ours.report(codes), detectors.drift_report(alibi, codes)
    _assert_same_report(report, expected)
    # Not vacuous: the shift is found and rows of the data set pass, in both.
    assert report.is_drift == shifted
    if shifted:
        assert {"MonthlyIncome", "OverTime"} <= set(report.drifted)


def test_the_same_batch_twice_gives_the_same_report(tests, everyone):
    """The K-S p-value cache must not change a number."""
    ours, _ = tests
    codes = _batch(everyone, 100, shifted=True)
    assert ours.report(codes) == ours.report(codes.copy())


def test_fewer_than_the_minimum_rows_are_refused(tests, everyone):
    ours, alibi = tests
    codes = _batch(everyone, MIN_DRIFT_ROWS - 1, shifted=False)
    for test in (ours.report, lambda c: detectors.drift_report(alibi, c)):
        with pytest.raises(ValueError, match=f"at least {MIN_DRIFT_ROWS}"):
            test(codes)
    assert ours.report(_batch(everyone, MIN_DRIFT_ROWS, shifted=False)).rows == MIN_DRIFT_ROWS


def test_a_category_absent_from_both_samples_is_refused_by_both(reference):
    """Chi-squared has no expected count for it; alibi-detect (scipy) refuses too, rather than a NaN."""
    overtime = FEATURES.index("OverTime")
    assert len(CATEGORICAL["OverTime"]) == 2
    never_yes = reference[reference[:, overtime] == 0]
    batch = never_yes[:MIN_DRIFT_ROWS]
    with pytest.raises(ValueError):
        DriftTest(never_yes).report(batch)
    with pytest.raises(ValueError):
        detectors.drift_report(detectors.fit_drift(never_yes), batch)
