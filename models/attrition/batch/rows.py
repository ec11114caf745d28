"""Row checks in Spark column expressions: what ``attrition.contract.schema.encode`` checks, row by
row, so that a bad row goes to the rejects with its reason and never fails the job."""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING

from attrition.contract.errors import InvalidInput
from attrition.contract.schema import CATEGORICAL, FEATURES, NUMERIC

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

REJECT_REASON = "reject_reason"

#: Separates the problems of one row in ``reject_reason`` (a message never contains it).
REASON_SEPARATOR = "; "


def check_columns(frame: DataFrame) -> None:
    """Table-level checks: every feature column present, of a type that can hold its values."""
    from pyspark.sql.types import NumericType, StringType

    types = {f.name: f.dataType for f in frame.schema.fields}
    missing = [name for name in FEATURES if name not in types]
    if missing:
        raise InvalidInput(missing[0], f"missing column(s) {missing}; expected all of {list(FEATURES)}")
    for name in NUMERIC:
        if not isinstance(types[name], NumericType | StringType):
            raise InvalidInput(name, f"column of type {types[name].simpleString()}; expected numbers")


def fits_schema(frame: DataFrame) -> Column:
    """A boolean column, true for a row whose 30 features fit the schema (never null): what
    ``attrition.contract.schema.validate_features`` checks, row by row. :func:`reject_reason` says why not.

    Kept small on purpose (the generated code of one predicate over 30 columns is large): ``between``
    alone rejects nulls, NaN (Spark orders NaN above every number) and infinities, as the domain
    bounds are finite."""
    from pyspark.sql import functions as F

    checks = [
        _as_double(frame, name).between(NUMERIC[name].low, NUMERIC[name].high)
        if name in NUMERIC
        else F.col(f"`{name}`").cast("string").isin(*CATEGORICAL[name])
        for name in FEATURES
    ]
    return F.coalesce(functools.reduce(operator.and_, checks), F.lit(False))  # a null input -> False


def reject_reason(frame: DataFrame) -> Column:
    """A column that is null for a row that fits the schema, else names each field that does not and
    what was expected, e.g. ``Age: 150.0 is out of range, expected 14 to 100; Department: unknown
    category 'Marketing', expected one of [...]``. Checks what ``attrition.contract.schema.validate_features``
    checks: numerics present, numbers, finite and within their domain; categoricals from the allowed
    values (exact spelling)."""
    from pyspark.sql import functions as F

    problems = []
    for name in FEATURES:
        raw = F.col(f"`{name}`")
        if name in NUMERIC:
            low, high = NUMERIC[name].low, NUMERIC[name].high
            value = _as_double(frame, name)
            problems.append(
                F.when(raw.isNull(), F.lit(f"{name}: missing, expected a number from {low:g} to {high:g}"))
                .when(
                    value.isNull(),
                    F.concat(F.lit(f"{name}: expected a number, got '"), raw.cast("string"), F.lit("'")),
                )
                .when(
                    F.isnan(value) | (F.abs(value) == float("inf")),
                    F.lit(f"{name}: expected a finite number, got NaN or infinity"),
                )
                .when(
                    (value < low) | (value > high),
                    F.concat(
                        F.lit(f"{name}: "),
                        value.cast("string"),
                        F.lit(f" is out of range, expected {low:g} to {high:g}"),
                    ),
                )
            )
        else:
            allowed = list(CATEGORICAL[name])
            value = raw.cast("string")
            problems.append(
                F.when(raw.isNull(), F.lit(f"{name}: missing, expected one of {allowed}")).when(
                    ~value.isin(*allowed),
                    F.concat(
                        F.lit(f"{name}: unknown category '"), value, F.lit(f"', expected one of {allowed}")
                    ),
                )
            )
    joined = F.concat_ws(REASON_SEPARATOR, *problems)  # skips the nulls of fields that fit
    return F.when(joined != "", joined)


def feature_columns(frame: DataFrame) -> list[Column]:
    """The 30 features as the pyfunc's signature types: doubles and strings, in schema order."""
    from pyspark.sql import functions as F

    return [
        (_as_double(frame, name) if name in NUMERIC else F.col(f"`{name}`").cast("string")).alias(name)
        for name in FEATURES
    ]


def rejects_by_field(rejects: DataFrame) -> tuple[int, dict[str, int]]:
    """Rejected rows in all, and per field (a row with two bad fields counts for both)."""
    from pyspark.sql import functions as F

    reason = F.col(REJECT_REASON)
    mentions = {
        name: reason.startswith(f"{name}:") | reason.contains(f"{REASON_SEPARATOR}{name}:")
        for name in FEATURES
    }
    counts = rejects.agg(
        F.count(F.lit(1)).alias("__rows"),
        *[F.sum(found.cast("long")).alias(name) for name, found in mentions.items()],
    ).first()
    return int(counts["__rows"]), {name: int(counts[name]) for name in FEATURES if counts[name]}


def _as_double(frame: DataFrame, name: str) -> Column:
    """A numeric feature as double; strings that are not numbers become null (``try_cast``)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    if isinstance(frame.schema[name].dataType, StringType):
        return F.expr(f"try_cast(`{name}` AS DOUBLE)")
    return F.col(f"`{name}`").cast("double")
