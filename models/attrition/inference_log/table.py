"""Append to, read and maintain the inference log's Delta table, local or in object storage.

delta-rs (``deltalake``) writes Delta without a JVM, so the serving image stays small; the same table
is read by Spark and Databricks unchanged. Credentials and endpoints come from the environment the way
delta-rs's object stores read them (``AZURE_STORAGE_ACCOUNT_NAME``; workload identity's
``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/``AZURE_FEDERATED_TOKEN_FILE``; Azurite's
``AZURE_STORAGE_USE_EMULATOR`` and ``AZURITE_BLOB_STORAGE_URL``): the code path is the same on Azure,
on the emulator and on a laptop. ``storage_options`` are passed through on top, as delta-rs takes them.

Several writers (one per MLServer worker, several pods) append to one table: appends never conflict
in Delta, and delta-rs retries a commit whose version another writer took first.

delta-rs is imported by the functions that use it, not here: the server's main process and its workers
import this package (for the entity key's input name and the settings) and only the writer thread
commits, so a process that never writes never maps delta-rs (about 20 MiB of RSS each).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from attrition.inference_log.schema import LOG_SCHEMA, PARTITION_BY

#: Object-store requests are not retried inside delta-rs (its default retries for minutes, and a
#: retried commit whose first try landed unseen commits the rows twice): the writer retries whole
#: commits with its own backoff and skips those that landed (``committed``), and a flush at shutdown
#: ends in bounded time.
REMOTE_DEFAULTS = {"timeout": "10s", "max_retries": "0"}
#: Commits retried when another writer took the next table version first (delta-rs's default is 15).
COMMIT_RETRIES = 50
#: Table properties the first append creates the table with. A checkpoint every 10 commits (Delta
#: Lake's own default; delta-rs's is 100): each append replays the JSON commits since the last
#: checkpoint, and with 100 of them a server's writer held ~25 MiB more and ~50 more threads.
TABLE_PROPERTIES = {"delta.checkpointInterval": "10"}
#: Files vacuum keeps after they leave the table, so readers of a recent version still find them
#: (Delta's own default).
VACUUM_RETENTION_HOURS = 168


def is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def storage_options(location: str, given: dict[str, str] | None = None) -> dict[str, str] | None:
    """delta-rs options for ``location``: bounded request retries for object stores, then ``given``."""
    options = dict(REMOTE_DEFAULTS) if is_remote(location) else {}
    options.update(given or {})
    return options or None


def append(
    location: str,
    rows: pa.Table,
    storage_options: dict[str, str] | None = None,
    transaction: tuple[str, int] | None = None,
) -> None:
    """One commit of ``rows`` (cast to the log's schema; creates the table on first use).
    ``transaction`` (writer id, batch number) is recorded in the commit, Delta's idempotent-write
    marker (as Spark streaming uses it): see :func:`committed`."""
    from deltalake import CommitProperties, Transaction, write_deltalake

    app_transactions = [Transaction(*transaction)] if transaction else None
    write_deltalake(
        location,
        rows.select(LOG_SCHEMA.names).cast(LOG_SCHEMA),
        mode="append",
        partition_by=list(PARTITION_BY),
        configuration=TABLE_PROPERTIES,  # used when this append creates the table, ignored after
        storage_options=storage_options,
        commit_properties=CommitProperties(
            max_commit_retries=COMMIT_RETRIES, app_transactions=app_transactions
        ),
    )


def committed(location: str, writer_id: str, storage_options: dict[str, str] | None = None) -> int | None:
    """The last batch number that ``writer_id`` committed, None if none (or no table yet): after a
    failed commit, whether it landed after all."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(location, storage_options=storage_options).transaction_version(writer_id)
    except TableNotFoundError:
        return None


def read(location: str, storage_options: dict[str, str] | None = None) -> pd.DataFrame:
    """The whole log as a DataFrame (a Spark job reads the same table for a workforce-sized log)."""
    from deltalake import DeltaTable

    return DeltaTable(location, storage_options=storage_options).to_pandas()


@dataclass(frozen=True)
class Maintenance:
    """What :func:`compact` did."""

    rows_deleted: int
    files_compacted: int
    files_added: int
    files_vacuumed: int
    version: int

    def summary(self) -> str:
        return (
            f"deleted {self.rows_deleted} rows past retention, compacted {self.files_compacted} files "
            f"into {self.files_added}, vacuumed {self.files_vacuumed} files; table version {self.version}"
        )


def compact(
    location: str,
    retention_days: int | None = None,
    vacuum_hours: int = VACUUM_RETENTION_HOURS,
    storage_options: dict[str, str] | None = None,
    today: dt.date | None = None,
) -> Maintenance:
    """Delete the days older than ``retention_days`` (whole ``date`` partitions), rewrite the many
    small files of frequent commits into few (delta-rs optimize), then vacuum files that left the
    table more than ``vacuum_hours`` ago."""
    from deltalake import DeltaTable

    table = DeltaTable(location, storage_options=storage_options)
    deleted = 0
    if retention_days is not None:
        cutoff = (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=retention_days)
        deleted = table.delete(f"date < '{cutoff.isoformat()}'").get("num_deleted_rows", 0)
    metrics = table.optimize.compact()
    vacuumed = table.vacuum(
        retention_hours=vacuum_hours,
        dry_run=False,
        enforce_retention_duration=vacuum_hours >= VACUUM_RETENTION_HOURS,
    )
    return Maintenance(
        rows_deleted=int(deleted),
        files_compacted=int(metrics.get("numFilesRemoved", 0)),
        files_added=int(metrics.get("numFilesAdded", 0)),
        files_vacuumed=len(vacuumed),
        version=table.version(),
    )
