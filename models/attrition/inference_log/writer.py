"""The inference log's writer: a bounded buffer filled on the request path without waiting, and one
thread that commits it to the Delta table every ``commit_rows`` rows or ``commit_s`` seconds.

Nothing here can fail or slow a request: :meth:`LogWriter.put` only appends to a list under a lock;
when the buffer is full the rows are dropped, counted and logged. A failed commit (storage down) is
retried with exponential backoff while new rows keep buffering, up to the capacity. :meth:`close`
commits what is left (the server calls it on SIGTERM); a ``kill -9`` loses what was buffered, at most
one commit interval of rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from attrition.inference_log import table
from attrition.inference_log.schema import COLUMNS, LOG_SCHEMA

#: One request's rows: a list of values per log column.
Rows = dict[str, list]


def _ignore(_: int) -> None:
    return None


@dataclass
class Counters:
    """Where the writer reports (the runtime passes Prometheus counters' ``inc``)."""

    written: Callable[[int], None] = _ignore
    dropped: Callable[[int], None] = _ignore
    failed_commits: Callable[[int], None] = _ignore


class LogWriter:
    """One per process; thread-safe :meth:`put`."""

    def __init__(
        self,
        location: str,
        commit_rows: int = 1000,
        commit_s: float = 10.0,
        capacity_rows: int = 100_000,
        storage_options: dict[str, str] | None = None,
        counters: Counters | None = None,
        log: logging.Logger | None = None,
        max_backoff_s: float = 30.0,
    ):
        self.location, self.commit_rows, self.commit_s = location, commit_rows, commit_s
        self.capacity_rows, self.max_backoff_s = capacity_rows, max_backoff_s
        self.storage_options = table.storage_options(location, storage_options)
        self.counters = counters or Counters()
        self.log = log or logging.getLogger(__name__)
        self._cond = threading.Condition()
        self._chunks: list[Rows] = []
        self._queued = 0  # rows in _chunks
        self._buffered = 0  # rows in _chunks or being committed: what capacity_rows bounds
        self._closing = False
        self._closed = threading.Event()
        self._lost_at_close = 0
        self._close_deadline = float("inf")
        self._last_drop_log = -float("inf")
        self._drops_unlogged = 0  # rows dropped since the last warning line
        self._drop_lock = threading.Lock()
        #: Delta's idempotent-write marker: a commit that failed but landed is not written again.
        self.writer_id, self._batches = f"attrition-inference-log-{uuid.uuid4()}", 0
        self._thread = threading.Thread(target=self._run, name="attrition-inference-log", daemon=True)

    def start(self) -> LogWriter:
        self._thread.start()
        return self

    def put(self, rows: Rows, count: int) -> bool:
        """Buffer one request's ``count`` rows; False (counted and logged) when the buffer is full
        or the writer is closing."""
        with self._cond:
            accepted = not self._closing and self._buffered + count <= self.capacity_rows
            if accepted:
                self._chunks.append(rows)
                self._queued += count
                self._buffered += count
                if self._queued >= self.commit_rows:
                    self._cond.notify()
        if not accepted:
            self.drop(count, "the buffer is full" if not self._closing else "the writer is closing")
        return accepted

    @property
    def buffered(self) -> int:
        with self._cond:
            return self._buffered

    def close(self, timeout_s: float = 30.0) -> int:
        """Commit everything buffered (retrying for up to ``timeout_s``), stop the thread; the rows it
        could not write, counted as dropped."""
        with self._cond:
            self._closing = True
            self._close_deadline = time.monotonic() + timeout_s
            self._cond.notify()
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s + 5)
        with self._cond:
            lost, self._buffered, self._chunks, self._queued = self._buffered, 0, [], 0
        if lost:
            self.drop(lost, "they could not be written before shutdown")
        return lost + self._lost_at_close

    def _run(self) -> None:
        while True:
            chunks, count = self._next_batch()
            if chunks is None:
                return
            if chunks:
                self._commit(chunks, count)

    def _next_batch(self) -> tuple[list[Rows] | None, int]:
        """Waits for ``commit_rows`` rows, ``commit_s`` seconds or close; (None, 0) once closed and empty."""
        with self._cond:
            deadline = time.monotonic() + self.commit_s
            while not self._closing and self._queued < self.commit_rows:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if not self._chunks:
                return (None, 0) if self._closing else ([], 0)
            chunks, count = self._chunks, self._queued
            self._chunks, self._queued = [], 0
            return chunks, count

    def _commit(self, chunks: list[Rows], count: int) -> None:
        rows = to_arrow(chunks)
        self._batches += 1
        delay, failures = 0.5, 0
        while True:
            try:
                if not failures or not self._landed():
                    table.append(self.location, rows, self.storage_options, (self.writer_id, self._batches))
                self.counters.written(count)
                if failures:
                    self.log.warning(f"inference log: written again after {failures} failed commits")
                break
            except Exception as error:  # any storage error: the rows stay buffered and are retried
                failures += 1
                self.counters.failed_commits(1)
                # Closing: retry every second until the deadline (storage may just be back).
                wait = min(1.0 if self._closing else delay, self._close_deadline - time.monotonic())
                if wait <= 0:
                    self._lost_at_close += count
                    self.drop(count, f"storage failed until shutdown ({type(error).__name__}: {error})")
                    break
                self.log.warning(
                    f"inference log: commit of {count} rows to {self.location} failed "
                    f"({type(error).__name__}: {error}); retrying in {wait:.1f} s"
                )
                if self._closed.is_set():
                    time.sleep(wait)
                else:
                    self._closed.wait(wait)  # close() ends the backoff: one more try at once
                delay = min(delay * 2, self.max_backoff_s)
        with self._cond:
            self._buffered -= count

    def _landed(self) -> bool:
        """Whether the last failed commit of this batch reached the table after all."""
        version = table.committed(self.location, self.writer_id, self.storage_options)
        return version is not None and version >= self._batches

    def drop(self, count: int, why: str) -> None:
        """Count and log rows that will not be written. Drops come in floods: one line per 10 s at
        most, with every row dropped since the previous line (the last reason given)."""
        self.counters.dropped(count)
        with self._drop_lock:
            self._drops_unlogged += count
            now = time.monotonic()
            if now - self._last_drop_log < 10.0:
                return
            self._last_drop_log, total, self._drops_unlogged = now, self._drops_unlogged, 0
        self.log.warning(
            f"inference log: dropped {total} rows because {why} (every drop since the last line)"
        )


def to_arrow(chunks: list[Rows]) -> pa.Table:
    """Requests' rows as one Arrow table in the log's schema."""
    columns = {name: [value for chunk in chunks for value in chunk[name]] for name in COLUMNS}
    return pa.Table.from_pydict(columns, schema=LOG_SCHEMA)


def request_rows(
    request_id: str,
    entity_keys: list[str | None],
    model_name: str,
    model_version: str,
    trust_backend: str,
    probability: list[float],
    prediction: list[str],
    outlier_score: list[float],
    is_outlier: list[bool],
    is_drift: bool | None,
) -> Rows:
    """One request's log rows, as plain lists (Arrow is built in the writer thread, off the request)."""
    n = len(probability)
    now = dt.datetime.now(dt.UTC)
    return {
        "request_id": [request_id] * n,
        "row_index": list(range(n)),
        "entity_key": entity_keys,
        "model_name": [model_name] * n,
        "model_version": [model_version] * n,
        "trust_backend": [trust_backend] * n,
        "timestamp": [now] * n,
        "probability": probability,
        "prediction": prediction,
        "outlier_score": outlier_score,
        "is_outlier": is_outlier,
        "is_drift": [is_drift] * n,
        "date": [now.date()] * n,
    }
