"""The inference log's columns, defined once (Arrow types; Databricks reads the Delta table as is).

No feature value is a column: the log says what was answered for whom, never what the employee's
record held. The caller's employee id is stored only as a keyed hash (``keys``).
"""

from __future__ import annotations

import pyarrow as pa

LOG_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("row_index", pa.int64(), nullable=False),
        # HMAC-SHA256 of the employee id (hex); null when the caller sent no id.
        pa.field("entity_key", pa.string(), nullable=True),
        pa.field("model_name", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("trust_backend", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("probability", pa.float64(), nullable=False),
        pa.field("prediction", pa.string(), nullable=False),
        pa.field("outlier_score", pa.float64(), nullable=False),
        pa.field("is_outlier", pa.bool_(), nullable=False),
        # The request's batch drift verdict; null where no drift test ran (fewer rows than its minimum).
        pa.field("is_drift", pa.bool_(), nullable=True),
        # The UTC day of ``timestamp``: the partition that retention deletes and compaction rewrites.
        pa.field("date", pa.date32(), nullable=False),
    ]
)
COLUMNS: tuple[str, ...] = tuple(LOG_SCHEMA.names)
PARTITION_BY: tuple[str, ...] = ("date",)
