"""Inference-log rows from scores made offline: what the server would have logged for them. The
tests and the book use it to build a log with real predictions at chosen times."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from attrition import config
from attrition.inference_log import LOG_SCHEMA, hash_entities


def log_rows(
    scores: pd.DataFrame,
    employee_ids: Sequence[object],
    timestamps: Sequence[pd.Timestamp],
    model_version: str,
    model_name: str = config.MODEL_NAME,
    trust_backend: str = "alibi",
) -> pa.Table:
    """One log record per scored row (``scores`` as ``TrustBundle.score`` returns them), one request
    per row, keys hashed with ``$ATTRITION_ENTITY_KEY``."""
    when = pd.to_datetime(pd.Series(list(timestamps)), utc=True).dt.floor("us")  # the log keeps µs
    n = len(scores)
    frame = pd.DataFrame(
        {
            "request_id": [str(uuid.uuid4()) for _ in range(n)],
            "row_index": np.zeros(n, dtype="int64"),
            "entity_key": hash_entities(employee_ids),
            "model_name": model_name,
            "model_version": str(model_version),
            "trust_backend": trust_backend,
            "timestamp": when.to_numpy(),
            "probability": scores["probability"].to_numpy(dtype=float),
            "prediction": scores["prediction"].astype(str).to_numpy(),
            "outlier_score": scores["outlier_score"].to_numpy(dtype=float),
            "is_outlier": scores["is_outlier"].to_numpy(dtype=bool),
            "is_drift": pd.array([None] * n, dtype="boolean"),
            "date": when.dt.date.to_numpy(),
        }
    )
    return pa.Table.from_pandas(frame, preserve_index=False).cast(LOG_SCHEMA)


def traffic(
    features: pd.DataFrame,
    labels: pd.Series,
    start: str = "2025-01-01",
    months: int = 12,
    per_month: int = 150,
    seed: int = 0,
    weights: pd.Series | None = None,
    shift_from: int | None = None,
) -> pd.DataFrame:
    """A year of requests: each month ``per_month`` rows drawn from ``features`` (with the label
    each will turn out to have in ``left``), each a new employee id, at a random time in the month.
    From month ``shift_from`` on, rows are drawn with ``weights`` instead of uniformly."""
    rng = np.random.default_rng(seed)
    first = pd.Timestamp(start, tz="UTC")
    parts = []
    for index in range(months):
        p = None if weights is None or shift_from is None or index < shift_from else weights / weights.sum()
        picks = rng.choice(len(features), size=per_month, p=None if p is None else p.to_numpy())
        begin = first + pd.DateOffset(months=index)
        seconds = (begin + pd.DateOffset(months=1) - begin).total_seconds()
        when = begin + pd.to_timedelta(np.sort(rng.uniform(0, seconds, per_month)), unit="s")
        part = features.iloc[picks].reset_index(drop=True)
        part["left"] = labels.to_numpy()[picks]
        part["employee_id"] = [f"E{index:02d}{i:04d}" for i in range(per_month)]
        part["timestamp"] = when
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def log_traffic(bundle, requests: pd.DataFrame, location: str, model_version: str) -> None:
    """Score the requests with the bundle and append what the server would have logged, one commit
    per month."""
    from attrition.contract.schema import FEATURES
    from attrition.inference_log import append

    for _, month in requests.groupby(requests["timestamp"].dt.strftime("%Y-%m")):
        scores = bundle.score(month.loc[:, list(FEATURES)])
        append(location, log_rows(scores, month["employee_id"], month["timestamp"], model_version))


def outcomes_of(
    requests: pd.DataFrame, seed: int = 0, delay_days: tuple[int, int] = (90, 270)
) -> pd.DataFrame:
    """The outcomes file HR would send: each employee's outcome, dated ``delay_days`` after the
    request (uniformly between the two bounds)."""
    rng = np.random.default_rng(seed)
    delay = pd.to_timedelta(rng.integers(*delay_days, len(requests)), unit="D")
    return pd.DataFrame(
        {
            "employee_id": requests["employee_id"].to_numpy(),
            "left": np.where(requests["left"] == 1, "Yes", "No"),
            "date": (requests["timestamp"] + delay).dt.strftime("%Y-%m-%d").to_numpy(),
        }
    )
