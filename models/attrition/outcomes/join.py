"""Each outcome judges one prediction: the latest logged for that employee strictly before the
outcome's date and no older than the horizon. Outcomes with no such prediction are counted as
unjoined, never dropped silently."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: Log rows are ordered by these before the as-of join, so that equal timestamps break ties the same
#: way everywhere (the Spark join orders by the same columns).
ORDER = ("timestamp", "request_id", "row_index")
#: What a joined row keeps of the log.
LOG_FIELDS = ("model_name", "model_version", "timestamp", "probability", "prediction")
DEFAULT_HORIZON_DAYS = 365


@dataclass
class Joined:
    """The joined rows (outcome + the prediction it judges) and the count of outcomes left over."""

    rows: pd.DataFrame
    unjoined: int


def join_outcomes(log: pd.DataFrame, outcomes: pd.DataFrame, horizon_days: int) -> Joined:
    """``outcomes`` has ``entity_key``, ``left`` and ``date`` (see ``outcomes_file.keyed``); ``log``
    is the inference log. pandas' as-of join does the "latest before, within the horizon" part."""
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    keyed_log = log.loc[log["entity_key"].notna(), ["entity_key", *ORDER[1:], *LOG_FIELDS]]
    keyed_log = keyed_log.sort_values(list(ORDER), kind="mergesort").reset_index(drop=True)
    left = outcomes.sort_values("date", kind="mergesort").reset_index(drop=True)
    # merge_asof needs the same dtype on both sides: the log's microsecond UTC timestamps.
    left["date"] = left["date"].astype(keyed_log["timestamp"].dtype)
    merged = pd.merge_asof(
        left,
        keyed_log,
        left_on="date",
        right_on="timestamp",
        by="entity_key",
        direction="backward",
        allow_exact_matches=False,  # a prediction made on the outcome's day did not predict it
        tolerance=pd.Timedelta(days=horizon_days),
    )
    found = merged["probability"].notna()
    rows = merged.loc[found, ["entity_key", "date", "left", *LOG_FIELDS]].reset_index(drop=True)
    return Joined(rows, int((~found).sum()))


def month(timestamps: pd.Series) -> pd.Series:
    """The calendar month (``YYYY-MM``, UTC) a timestamp falls in: the report's window."""
    return timestamps.dt.strftime("%Y-%m")
