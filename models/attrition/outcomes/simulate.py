"""Inference-log rows from scores made offline: what the server would have logged for them. The
tests and the book use it to build a log with real predictions at chosen times."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from attrition.inference_log import LOG_SCHEMA, hash_entities


def log_rows(
    scores: pd.DataFrame,
    employee_ids: Sequence[object],
    timestamps: Sequence[pd.Timestamp],
    model_version: str,
    model_name: str = "employee-attrition",
    trust_backend: str = "alibi",
) -> pa.Table:
    """One log record per scored row (``scores`` as ``TrustBundle.score`` returns them), one request
    per row, keys hashed with ``$ATTRITION_ENTITY_KEY``."""
    when = pd.to_datetime(pd.Series(list(timestamps)), utc=True)
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
