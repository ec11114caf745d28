"""The outcomes file: one row per known outcome (``employee_id``, ``left``, ``date``), checked row by
row so that a bad file gets one line naming the column and the row, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from attrition.contract.errors import AttritionError
from attrition.inference_log import hash_entities
from attrition.inference_log.keys import entity_text

COLUMNS = ("employee_id", "left", "date")
#: Accepted spellings of an outcome (case and surrounding blanks ignored).
LEFT_VALUES = {"yes": 1, "1": 1, "true": 1, "no": 0, "0": 0, "false": 0}


class OutcomesError(AttritionError, ValueError):
    """An outcomes file that cannot be read as outcomes; the message names the column and the row."""


def read_outcomes(path: str | Path) -> pd.DataFrame:
    """The file (CSV, or Parquet by its suffix) as ``employee_id``, ``left`` (0/1) and ``date``
    (UTC midnight of the outcome's day). Rows are numbered from 1, after the header."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"outcomes file {path} does not exist")
    if path.suffix == ".parquet":
        raw = pd.read_parquet(path)
    else:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return check_outcomes(raw, str(path))


def check_outcomes(raw: pd.DataFrame, source: str = "outcomes") -> pd.DataFrame:
    """Validate and normalise an outcomes frame (a file's or a table's)."""
    missing = [name for name in COLUMNS if name not in raw.columns]
    if missing:
        raise OutcomesError(
            f"{source}: missing column {missing[0]!r} (expected columns: {', '.join(COLUMNS)})"
        )
    ids = raw["employee_id"].map(entity_text)
    _first_bad(source, "employee_id", raw["employee_id"], ids.eq("") | raw["employee_id"].isna(), "an id")
    text = raw["left"].astype(str).str.strip().str.lower()
    text = text.str.replace(r"\.0$", "", regex=True)  # 1.0 / 0.0 from a numeric column
    left = text.map(LEFT_VALUES)
    _first_bad(source, "left", raw["left"], left.isna(), "Yes/No or 1/0")
    dates = pd.to_datetime(raw["date"].astype(str).str.strip(), errors="coerce", utc=True, format="mixed")
    _first_bad(source, "date", raw["date"], dates.isna(), "a date (e.g. 2025-03-31)")
    checked = pd.DataFrame(
        {"employee_id": ids.to_numpy(), "left": left.astype(int).to_numpy(), "date": dates.dt.normalize()}
    )
    _no_repeats(source, checked)
    return checked


def _no_repeats(source: str, checked: pd.DataFrame) -> None:
    """One employee has one outcome per day: a second is a copy, or contradicts the first."""
    repeated = checked.duplicated(["employee_id", "date"], keep="first").to_numpy()
    if repeated.any():
        row = int(repeated.argmax())
        same = checked[["employee_id", "date"]].eq(checked[["employee_id", "date"]].iloc[row]).all(axis=1)
        first = int(same.to_numpy().argmax())
        raise OutcomesError(
            f"{source}: row {row + 1} repeats row {first + 1}'s employee_id and date "
            f"({checked['employee_id'].iloc[row]!r}, {checked['date'].iloc[row]:%Y-%m-%d}): "
            "one outcome per employee and day"
        )


def _first_bad(source: str, column: str, values: pd.Series, bad: pd.Series, expected: str) -> None:
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise OutcomesError(
            f"{source}: column {column!r}, row {row + 1}: {values.iloc[row]!r} is not {expected}"
        )


def keyed(outcomes: pd.DataFrame, secret: str | None = None) -> pd.DataFrame:
    """The outcomes with ``entity_key`` (the log's keyed hash, same secret) instead of the raw id."""
    keys = hash_entities(outcomes["employee_id"], secret)
    return outcomes.drop(columns="employee_id").assign(entity_key=keys)
