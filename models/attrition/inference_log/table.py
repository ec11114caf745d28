"""Append to and read the inference log's Delta table, local or in object storage.

delta-rs (``deltalake``) writes Delta without a JVM, so the serving image stays small; the same table
is read by Spark and Databricks unchanged. ``storage_options`` are delta-rs's object-store options
(for Azure: account, credentials or ``use_emulator``), passed through as they are.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from attrition.inference_log.schema import LOG_SCHEMA, PARTITION_BY


def append(location: str, rows: pa.Table, storage_options: dict[str, str] | None = None) -> None:
    """One commit of ``rows`` (cast to the log's schema; creates the table on first use)."""
    write_deltalake(
        location,
        rows.select(LOG_SCHEMA.names).cast(LOG_SCHEMA),
        mode="append",
        partition_by=list(PARTITION_BY),
        storage_options=storage_options,
    )


def read(location: str, storage_options: dict[str, str] | None = None) -> pd.DataFrame:
    """The whole log as a DataFrame (a Spark job reads the same table for a workforce-sized log)."""
    return DeltaTable(location, storage_options=storage_options).to_pandas()
