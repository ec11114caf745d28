"""The IBM HR Attrition feature schema, defined once and imported everywhere else.

Categoricals carry their allowed values (the drift detector, the outlier detector and the anchor
explainer all see them as ordinal codes in this order); numerics carry the domain bounds outside
which a value is an input error rather than an unusual employee.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attrition.contract.errors import InvalidInput

TARGET = "Attrition"
POSITIVE_LABEL = "Yes"
NEGATIVE_LABEL = "No"
LABELS = (NEGATIVE_LABEL, POSITIVE_LABEL)

#: Columns of the CSV that are not features, with the reason.
DROPPED_COLUMNS: dict[str, str] = {
    "EmployeeNumber": "an identifier: unique per row, it carries no signal and would leak identity",
    "EmployeeCount": "constant (always 1)",
    "StandardHours": "constant (always 80)",
    "Over18": "constant (always 'Y')",
}


@dataclass(frozen=True)
class Numeric:
    """A numeric feature and its domain: values outside [low, high] are rejected as input errors."""

    low: float
    high: float


#: Categorical features and their allowed values, in the order used for ordinal codes.
CATEGORICAL: dict[str, tuple[str, ...]] = {
    "BusinessTravel": ("Non-Travel", "Travel_Frequently", "Travel_Rarely"),
    "Department": ("Human Resources", "Research & Development", "Sales"),
    "EducationField": (
        "Human Resources",
        "Life Sciences",
        "Marketing",
        "Medical",
        "Other",
        "Technical Degree",
    ),
    "Gender": ("Female", "Male"),
    "JobRole": (
        "Healthcare Representative",
        "Human Resources",
        "Laboratory Technician",
        "Manager",
        "Manufacturing Director",
        "Research Director",
        "Research Scientist",
        "Sales Executive",
        "Sales Representative",
    ),
    "MaritalStatus": ("Divorced", "Married", "Single"),
    "OverTime": ("No", "Yes"),
}

_LIKERT_4 = Numeric(1, 4)
_YEARS = Numeric(0, 60)

#: Numeric features with their domains (the data's range, widened to what is still plausible).
NUMERIC: dict[str, Numeric] = {
    "Age": Numeric(14, 100),
    "DailyRate": Numeric(0, 1e6),
    "DistanceFromHome": Numeric(0, 1000),
    "Education": Numeric(1, 5),
    "EnvironmentSatisfaction": _LIKERT_4,
    "HourlyRate": Numeric(0, 1e5),
    "JobInvolvement": _LIKERT_4,
    "JobLevel": Numeric(1, 5),
    "JobSatisfaction": _LIKERT_4,
    "MonthlyIncome": Numeric(0, 1e7),
    "MonthlyRate": Numeric(0, 1e7),
    "NumCompaniesWorked": Numeric(0, 60),
    "PercentSalaryHike": Numeric(0, 1000),
    "PerformanceRating": _LIKERT_4,
    "RelationshipSatisfaction": _LIKERT_4,
    "StockOptionLevel": Numeric(0, 3),
    "TotalWorkingYears": _YEARS,
    "TrainingTimesLastYear": Numeric(0, 365),
    "WorkLifeBalance": _LIKERT_4,
    "YearsAtCompany": _YEARS,
    "YearsInCurrentRole": _YEARS,
    "YearsSinceLastPromotion": _YEARS,
    "YearsWithCurrManager": _YEARS,
}

#: The 35 columns of the CSV, in file order.
RAW_COLUMNS: tuple[str, ...] = (
    "Age",
    "Attrition",
    "BusinessTravel",
    "DailyRate",
    "Department",
    "DistanceFromHome",
    "Education",
    "EducationField",
    "EmployeeCount",
    "EmployeeNumber",
    "EnvironmentSatisfaction",
    "Gender",
    "HourlyRate",
    "JobInvolvement",
    "JobLevel",
    "JobRole",
    "JobSatisfaction",
    "MaritalStatus",
    "MonthlyIncome",
    "MonthlyRate",
    "NumCompaniesWorked",
    "Over18",
    "OverTime",
    "PercentSalaryHike",
    "PerformanceRating",
    "RelationshipSatisfaction",
    "StandardHours",
    "StockOptionLevel",
    "TotalWorkingYears",
    "TrainingTimesLastYear",
    "WorkLifeBalance",
    "YearsAtCompany",
    "YearsInCurrentRole",
    "YearsSinceLastPromotion",
    "YearsWithCurrManager",
)

#: The 30 model features, in CSV order.
FEATURES: tuple[str, ...] = tuple(c for c in RAW_COLUMNS if c in CATEGORICAL or c in NUMERIC)

#: Index of each categorical feature in FEATURES -> number of categories (alibi-detect's format).
CATEGORIES_PER_FEATURE: dict[int, int] = {
    i: len(CATEGORICAL[name]) for i, name in enumerate(FEATURES) if name in CATEGORICAL
}


#: Lower and upper bound of each numeric feature, in NUMERIC order (for checking all at once).
_NUMERIC_NAMES = tuple(NUMERIC)
_LOW = np.array([NUMERIC[n].low for n in _NUMERIC_NAMES])
_HIGH = np.array([NUMERIC[n].high for n in _NUMERIC_NAMES])
_NUMERIC_AT = [FEATURES.index(n) for n in _NUMERIC_NAMES]
#: Category -> ordinal code, per categorical feature.
_CODES = {name: {value: code for code, value in enumerate(values)} for name, values in CATEGORICAL.items()}


def encode(columns: Mapping[str, np.ndarray | Sequence]) -> np.ndarray:
    """Raw columns (one per feature, as a V2 request or a frame carries them) -> validated float codes:
    numerics as float64 within their domain, categoricals as ordinal codes in schema order.

    Checked before any model sees the data: a NaN would make a drift p-value NaN (and drift silently
    false), and an unknown category would be one-hot encoded as all zeros without a word.
    """
    missing = [c for c in FEATURES if c not in columns]
    if missing:
        raise InvalidInput(missing[0], f"missing input(s) {missing}; expected all of {list(FEATURES)}")
    unknown = [c for c in columns if c not in _INDEX]
    if unknown:
        raise InvalidInput(str(unknown[0]), f"unknown input(s) {unknown}; expected only {list(FEATURES)}")
    n = len(columns[FEATURES[0]])
    if n == 0:
        raise InvalidInput("inputs", "empty batch: expected at least one row")
    for name in FEATURES:
        if len(columns[name]) != n:
            raise InvalidInput(name, f"has {len(columns[name])} rows but {FEATURES[0]} has {n}")
    codes = np.empty((n, len(FEATURES)), dtype="float64")
    for name in _NUMERIC_NAMES:
        codes[:, _INDEX[name]] = _numbers(name, columns[name])
    # All numerics at once: one finiteness and one range check instead of 23.
    numeric = codes[:, _NUMERIC_AT]
    if not np.isfinite(numeric).all():
        name = _NUMERIC_NAMES[int(np.argmin(np.isfinite(numeric).all(axis=0)))]
        raise InvalidInput(name, "expected a finite number, got NaN or infinity")
    outside = (numeric < _LOW) | (numeric > _HIGH)
    if outside.any():
        row, column = np.argwhere(outside)[0]
        name, spec = _NUMERIC_NAMES[column], NUMERIC[_NUMERIC_NAMES[column]]
        raise InvalidInput(
            name, f"{numeric[row, column]:g} is out of range; expected {spec.low:g} to {spec.high:g}"
        )
    for name in CATEGORICAL:
        codes[:, _INDEX[name]] = _category_codes(name, columns[name])
    return codes


def _numbers(name: str, values) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind not in "iuf":
        bad = [
            v for v in values if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number)
        ]
        if bad:
            raise InvalidInput(name, f"expected a number, got {bad[0]!r}")
    return values.astype("float64", copy=False).reshape(-1)


def _category_codes(name: str, values) -> list[int] | np.ndarray:
    if len(values) > 16:  # a hash-table lookup per column beats a Python loop per value
        codes = _CATEGORY_INDEX[name].get_indexer(np.asarray(values, dtype=object))
        if (codes >= 0).all():
            return codes
    index = _CODES[name]  # small batches; and bytes or unknown values, found one by one
    out = []
    for value in values:
        if isinstance(value, bytes | bytearray):
            value = value.decode("utf-8", "replace")
        code = index.get(value) if isinstance(value, str) else None
        if code is None:
            raise InvalidInput(name, f"unknown category {value!r}; expected one of {list(CATEGORICAL[name])}")
        out.append(code)
    return out


_INDEX = {name: i for i, name in enumerate(FEATURES)}
_CATEGORY_INDEX = {name: pd.Index(values) for name, values in CATEGORICAL.items()}


def frame_codes(frame: pd.DataFrame) -> np.ndarray:
    """:func:`encode` of a frame's columns (extra columns are refused, as in a request)."""
    return encode({name: frame[name].to_numpy() for name in frame.columns})


def validate_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame form of :func:`encode`: checked features in FEATURES order, float64 numerics and string
    categoricals (what the scikit-learn pipeline takes)."""
    return from_codes(frame_codes(frame)).set_axis(frame.index)


def to_codes(features: pd.DataFrame) -> np.ndarray:
    """Validated features -> float array with categoricals as ordinal codes (schema order).

    alibi-detect's saved detectors cannot load object arrays, and AnchorTabular wants codes too.
    """
    columns = []
    for name in FEATURES:
        if name in CATEGORICAL:
            codes = pd.Categorical(features[name], categories=CATEGORICAL[name]).codes
            columns.append(codes.astype("float64"))
        else:
            columns.append(features[name].to_numpy(dtype="float64"))
    return np.column_stack(columns)


def from_codes(codes: np.ndarray) -> pd.DataFrame:
    """The inverse of :func:`to_codes`, for explainers that perturb the coded array."""
    codes = np.atleast_2d(codes)
    data = {}
    for i, name in enumerate(FEATURES):
        if name in CATEGORICAL:
            index = np.clip(np.rint(codes[:, i]).astype(int), 0, len(CATEGORICAL[name]) - 1)
            data[name] = np.asarray(CATEGORICAL[name], dtype=object)[index]
        else:
            data[name] = codes[:, i].astype("float64")
    return pd.DataFrame(data)
