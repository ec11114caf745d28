"""The schema: one definition of the 30 features, and validation that names the field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attrition.contract.schema import (
    CATEGORICAL,
    CATEGORIES_PER_FEATURE,
    FEATURES,
    NUMERIC,
    InvalidInput,
    from_codes,
    to_codes,
    validate_features,
)
from attrition.training import data

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return data.load()[0]


def test_schema_covers_the_data(features):
    assert len(FEATURES) == 30 and set(FEATURES) == set(CATEGORICAL) | set(NUMERIC)
    for name, allowed in CATEGORICAL.items():
        assert set(features[name]) == set(allowed), name
    for name, spec in NUMERIC.items():
        assert spec.low <= features[name].min() and features[name].max() <= spec.high, name
    assert CATEGORIES_PER_FEATURE[FEATURES.index("JobRole")] == 9


def test_codes_round_trip(features):
    clean = validate_features(features)
    assert from_codes(to_codes(clean)).equals(clean.reset_index(drop=True))


def test_valid_frame_is_normalised(features):
    raw = features.head(3).copy()
    raw["Age"] = raw["Age"].astype(int)
    raw["OverTime"] = [b"Yes", b"No", b"Yes"]  # gRPC hands BYTES over as bytes
    clean = validate_features(raw[list(reversed(FEATURES))])
    assert list(clean.columns) == list(FEATURES)
    assert clean["Age"].dtype == np.float64 and list(clean["OverTime"]) == ["Yes", "No", "Yes"]


@pytest.mark.parametrize(
    "change, field, words",
    [
        (lambda f: f.drop(columns="Age"), "Age", "missing"),
        (lambda f: f.assign(Salary=1.0), "Salary", "unknown input"),
        (lambda f: f.assign(Age=np.nan), "Age", "finite"),
        (lambda f: f.assign(MonthlyIncome=np.inf), "MonthlyIncome", "finite"),
        (lambda f: f.assign(Age=-3.0), "Age", "out of range"),
        (lambda f: f.assign(JobLevel=9.0), "JobLevel", "out of range"),
        (lambda f: f.assign(Department="Marketing"), "Department", "unknown category 'Marketing'"),
        (lambda f: f.assign(OverTime=1.0), "OverTime", "unknown category"),
        (lambda f: f.assign(Age="forty"), "Age", "expected a number"),
        (lambda f: f.iloc[:0], "inputs", "empty"),
    ],
)
def test_bad_input_names_the_field(features, change, field, words):
    with pytest.raises(InvalidInput) as error:
        validate_features(change(features.head(2).copy()))
    assert error.value.field == field
    assert words in str(error.value)
