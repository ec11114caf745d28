"""The IBM HR Attrition feature schema, defined once and imported everywhere else.

Categoricals carry their allowed values (the drift detector, the outlier detector and the anchor
explainer all see them as ordinal codes in this order); numerics carry the domain bounds outside
which a value is an input error rather than an unusual employee.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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


class SchemaError(ValueError):
    """Input that does not fit the schema; ``field`` names the offending column."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def validate_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Check and normalise a frame of features: exact columns, float64 numerics within their domain,
    string categoricals from the allowed values. Returns a new frame in FEATURES order.

    Checked before any model sees the data: a NaN would make a drift p-value NaN (and drift silently
    false), and an unknown category would be one-hot encoded as all zeros without a word.
    """
    if len(frame) == 0:
        raise SchemaError("inputs", "empty batch: expected at least one row")
    missing = [c for c in FEATURES if c not in frame.columns]
    if missing:
        raise SchemaError(missing[0], f"missing input(s) {missing}; expected all of {list(FEATURES)}")
    unknown = [c for c in frame.columns if c not in FEATURES]
    if unknown:
        raise SchemaError(str(unknown[0]), f"unknown input(s) {unknown}; expected only {list(FEATURES)}")
    out = {}
    for name in FEATURES:
        values = frame[name].to_numpy()
        out[name] = _numeric(name, values) if name in NUMERIC else _categorical(name, values)
    return pd.DataFrame(out, index=frame.index)


def _numeric(name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind not in "iuf":
        bad = [
            v for v in values if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number)
        ]
        if bad:
            raise SchemaError(name, f"expected a number, got {bad[0]!r}")
    values = values.astype("float64")
    if not np.isfinite(values).all():
        raise SchemaError(name, "expected a finite number, got NaN or infinity")
    spec = NUMERIC[name]
    outside = values[(values < spec.low) | (values > spec.high)]
    if len(outside):
        raise SchemaError(name, f"{outside[0]:g} is out of range; expected {spec.low:g} to {spec.high:g}")
    return values


def _categorical(name: str, values: np.ndarray) -> np.ndarray:
    allowed = _ALLOWED[name]
    decoded = [v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else v for v in values]
    for value in decoded:
        if not isinstance(value, str) or value not in allowed:
            raise SchemaError(name, f"unknown category {value!r}; expected one of {list(CATEGORICAL[name])}")
    return np.asarray(decoded, dtype=object)


_ALLOWED = {name: frozenset(values) for name, values in CATEGORICAL.items()}


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
