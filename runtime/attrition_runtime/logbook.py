"""The server's side of the inference log: one writer per worker, fed one call per request
(:meth:`Logbook.record`), its counts exported as Prometheus counters the way monitoring.py exports
its series (MLServer's multiprocess metrics, so they exist with ``parallel_workers >= 1``).

Employee ids are hashed here, on arrival, with ``ATTRITION_ENTITY_KEY``: raw ids never reach the
buffer or the table. Without the secret, ids are refused (rows are logged without a key) and the
start log says why.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import numpy as np
from prometheus_client import Counter

from attrition.contract.trust import DriftReport
from attrition.inference_log.keys import ENTITY_INPUT, EntityKeyMissing, entity_hasher
from attrition.inference_log.writer import Counters, LogWriter, request_rows
from attrition_runtime.monitoring import LABEL_NAMES
from attrition_runtime.settings import RuntimeSettings

#: Prometheus series of the log (counters: exported with a ``_total`` suffix).
DROPPED_ROWS = "attrition_inference_log_dropped_rows"
WRITTEN_ROWS = "attrition_inference_log_written_rows"
FAILED_COMMITS = "attrition_inference_log_failed_commits"


def _counter(name: str, doc: str, labels: dict[str, str]) -> Callable[[int], None]:
    return Counter(name, doc, LABEL_NAMES, registry=None).labels(**labels).inc


class Logbook:
    """The writer, the entity hasher and the counters of one worker."""

    def __init__(
        self, options: RuntimeSettings, model_name: str, model_version: str, trust_backend: str, log
    ):
        labels = {"model_name": model_name, "model_version": model_version}
        counters = Counters(
            written=_counter(WRITTEN_ROWS, "Rows committed to the inference log", labels),
            dropped=_counter(DROPPED_ROWS, "Rows the inference log dropped", labels),
            failed_commits=_counter(FAILED_COMMITS, "Inference log commits failed (retried)", labels),
        )
        self.model_name, self.model_version, self.trust_backend = model_name, model_version, trust_backend
        self.writer = LogWriter(
            options.inference_log,
            commit_rows=options.inference_log_commit_rows,
            commit_s=options.inference_log_commit_s,
            capacity_rows=options.inference_log_buffer_rows,
            storage_options=options.inference_log_storage_options,
            counters=counters,
            log=log,
        ).start()
        self.flush_timeout_s = options.inference_log_flush_timeout_s
        self.log = log
        try:
            self.hash_entity: Callable[[object], str] | None = entity_hasher()
        except EntityKeyMissing as error:
            self.hash_entity = None
            log.warning(f"inference log: {ENTITY_INPUT} will not be stored (rows logged without it): {error}")
        self._warned_unkeyed = False
        log.info(
            f"inference log: {options.inference_log} (commit every {options.inference_log_commit_rows} rows "
            f"or {options.inference_log_commit_s:g} s; {ENTITY_INPUT} "
            + ("stored as HMAC-SHA256 keys)" if self.hash_entity else "not stored)")
        )

    def record(
        self,
        request_id: str | None,
        entities: list | None,
        scores: dict[str, np.ndarray],
        report: DriftReport | None,
    ) -> None:
        """Buffer one request's rows; never raises into the request (a failure is logged and dropped)."""
        n = len(scores["probability"])
        try:
            rows = request_rows(
                request_id or str(uuid.uuid4()),
                self._keys(entities, n),
                self.model_name,
                self.model_version,
                self.trust_backend,
                scores["probability"].tolist(),
                [str(p) for p in scores["prediction"]],
                scores["outlier_score"].tolist(),
                scores["is_outlier"].tolist(),
                None if report is None else bool(report.is_drift),
            )
        except Exception as error:  # a bug here must cost a log row, never an answer
            self.writer.drop(n, f"they could not be recorded ({type(error).__name__}: {error})")
            return
        self.writer.put(rows, n)

    def _keys(self, entities: list | None, n: int) -> list[str | None]:
        if entities is None:
            return [None] * n
        if self.hash_entity is None:
            if not self._warned_unkeyed:
                self._warned_unkeyed = True
                self.log.warning(f"inference log: {ENTITY_INPUT} received, not stored (no secret)")
            return [None] * n
        return [self.hash_entity(entity) for entity in entities]

    def close(self) -> None:
        lost = self.writer.close(self.flush_timeout_s)
        self.log.info(f"inference log: flushed and closed ({lost} rows could not be written)")
