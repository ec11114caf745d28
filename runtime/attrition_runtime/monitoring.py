"""What platform teams watch: Prometheus metrics for outliers and sliding-window drift, and one
structured telemetry line per request, behind one call per request (:meth:`Monitor.observe`).

MLServer serves custom metrics from its workers through prometheus_client's multiprocess mode, so they
exist only with ``parallel_workers >= 1`` (our settings.json); gauges use ``mostrecent`` so the
newest value wins across worker restarts. Importable without mlserver (the book reads the gauges with
:func:`read_window`).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from attrition.contract.schema import FEATURES, POSITIVE_LABEL
from attrition.contract.trust import MIN_DRIFT_ROWS, DriftReport
from attrition_runtime.estimated import EstimatedPerformance

#: Prometheus label names of every series of ours.
LABEL_NAMES = ("model_name", "model_version")
#: The window's gauges, by what read_window calls them.
WINDOW_GAUGES = {
    "is_drift": "attrition_window_is_drift",
    "threshold": "attrition_window_drift_threshold",
    "rows": "attrition_window_rows",
    "tests": "attrition_window_drift_tests_total",
    "outlier_rate": "attrition_window_outlier_rate",
}
WINDOW_P_VALUE = "attrition_window_drift_p_value"


class Metrics:
    """The runtime's own Prometheus series (MLServer already counts requests and latency)."""

    def __init__(self, model_name: str, model_version: str):
        labels = {"model_name": model_name, "model_version": model_version}
        self._labels = labels
        # registry=None: in multiprocess mode values go to MLServer's metrics dir, which /metrics reads.
        self.rows = self._counter("attrition_rows", "Rows scored")
        self.outliers = self._counter("attrition_outliers", "Rows flagged as outliers")
        self.probability = Histogram(
            "attrition_probability",
            "Predicted probability of leaving",
            LABEL_NAMES,
            registry=None,
            buckets=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        ).labels(**labels)
        self.batch_drift = Counter(
            "attrition_batch_drift",
            "Requests whose own batch was tested for drift, by verdict",
            (*LABEL_NAMES, "drift"),
            registry=None,
        )
        self.window_outlier_rate = self._gauge(
            WINDOW_GAUGES["outlier_rate"], "Outlier share in the drift window"
        )
        self.window_rows = self._gauge(WINDOW_GAUGES["rows"], "Rows in the sliding drift window")
        self.window_is_drift = self._gauge(WINDOW_GAUGES["is_drift"], "1 if the last window test found drift")
        self.window_tests = self._counter("attrition_window_drift_tests", "Sliding-window drift tests run")
        p_value = Gauge(
            WINDOW_P_VALUE,
            "Window drift p-value per feature (before the correction)",
            (*LABEL_NAMES, "feature"),
            registry=None,
            multiprocess_mode="mostrecent",
        )
        self.window_p_value = {f: p_value.labels(**labels, feature=f) for f in FEATURES}
        self.window_threshold = self._gauge(
            WINDOW_GAUGES["threshold"], "Per-feature p-value threshold (Bonferroni)"
        )

    def _counter(self, name: str, doc: str):
        return Counter(name, doc, LABEL_NAMES, registry=None).labels(**self._labels)

    def _gauge(self, name: str, doc: str):
        return Gauge(name, doc, LABEL_NAMES, registry=None, multiprocess_mode="mostrecent").labels(
            **self._labels
        )

    def observe_scores(self, probability: np.ndarray, outliers: int) -> None:
        self.rows.inc(len(probability))
        self.outliers.inc(outliers)
        for p in probability:
            self.probability.observe(float(p))

    def observe_batch_drift(self, report: DriftReport) -> None:
        self.batch_drift.labels(**self._labels, drift=str(report.is_drift).lower()).inc()

    def observe_window(self, report: DriftReport, outlier_rate: float) -> None:
        self.window_tests.inc()
        self.window_rows.set(report.rows)
        self.window_is_drift.set(int(report.is_drift))
        self.window_threshold.set(report.threshold)
        self.window_outlier_rate.set(outlier_rate)
        for feature, p in report.p_values.items():
            self.window_p_value[feature].set(p)


class DriftWindow:
    """The last ``size`` scored rows (as ordinal codes), tested against the training reference every
    ``every`` rows, so one-row-at-a-time traffic still yields drift signals.

    Tests never overlap and run at most once per ``min_interval_s``: under heavy batch traffic the
    window is still tested about once a second (dashboards scrape far less often), not after every
    request.
    """

    def __init__(self, size: int, every: int, min_interval_s: float = 1.0):
        if size < MIN_DRIFT_ROWS:
            raise ValueError(f"drift_window must be at least {MIN_DRIFT_ROWS} rows, got {size}")
        self.size, self.every, self.min_interval_s = size, max(1, every), max(0.0, min_interval_s)
        self._rows: collections.deque[np.ndarray] = collections.deque(maxlen=size)
        self._outliers: collections.deque[bool] = collections.deque(maxlen=size)
        self._since_test = 0
        self._testing = False
        self._last_test = -math.inf
        self._lock = threading.Lock()
        self.last: DriftReport | None = None

    def add(self, codes: np.ndarray, outliers: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Add rows; when a test is due, return a snapshot (codes, outlier rate) to test, then call
        :meth:`tested` when done."""
        with self._lock:
            self._rows.extend(codes)
            self._outliers.extend(bool(o) for o in outliers)
            self._since_test += len(codes)
            now = time.monotonic()
            if (
                self._since_test < self.every
                or len(self._rows) < MIN_DRIFT_ROWS
                or self._testing
                or now - self._last_test < self.min_interval_s
            ):
                return None
            self._since_test, self._testing, self._last_test = 0, True, now
            return np.vstack(self._rows), float(np.mean(self._outliers))

    def tested(self, report: DriftReport | None) -> None:
        with self._lock:
            self._testing = False
            if report is not None:
                self.last = report


class Telemetry:
    """One JSON line per request on stdout (for Log Analytics / any log shipper). Feature values are
    personal data: they are logged only when ``log_payloads`` is switched on."""

    def __init__(self, model_name: str, model_version: str, log_payloads: bool = False):
        self.model_name, self.model_version, self.log_payloads = model_name, model_version, log_payloads
        self.logger = logging.getLogger("attrition.telemetry")
        if not self.logger.handlers:
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter("%(message)s"))
            self.logger.addHandler(handler)
            self.logger.setLevel(logging.INFO)
            self.logger.propagate = False

    def log(self, request_id: str | None, started: float, **fields) -> None:
        record = {
            "event": "inference",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "request_id": request_id,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            **fields,
        }
        self.logger.info(json.dumps(record, default=str))


class Monitor:
    """Everything after scoring, in one call per request: metrics, the drift window (tested off the
    request path) and the telemetry line."""

    def __init__(
        self,
        model_name: str,
        model_version: str,
        drift_test: Callable[[np.ndarray], DriftReport],
        window: DriftWindow,
        log_payloads: bool = False,
        training_roc_auc: float | None = None,
    ):
        self.metrics = Metrics(model_name, model_version)
        self.telemetry = Telemetry(model_name, model_version, log_payloads)
        self.window = window
        self.estimated = EstimatedPerformance(model_name, model_version, window.size, training_roc_auc)
        self._drift_test = drift_test
        self.window_task: asyncio.Future | None = None

    def observe(
        self,
        request_id: str | None,
        started: float,
        codes: np.ndarray,
        scores: dict[str, np.ndarray],
        report: DriftReport | None,
        explain: str,
        payload: Callable[[], list[dict]] | None = None,
    ) -> None:
        outliers = scores["is_outlier"]
        flagged = int(outliers.sum())
        self.metrics.observe_scores(scores["probability"], flagged)
        if report is not None:
            self.metrics.observe_batch_drift(report)
        self.estimated.add(scores["probability"], scores["prediction"] == POSITIVE_LABEL)
        self._feed_window(codes, outliers)
        self.telemetry.log(
            request_id,
            started,
            rows=len(codes),
            mean_probability=round(float(scores["probability"].mean()), 6),
            predicted_leavers=int((scores["prediction"] == POSITIVE_LABEL).sum()),
            outliers=flagged,
            batch_drift=None if report is None else report.is_drift,
            batch_drifted_features=None if report is None else report.drifted,
            window_drift=None if self.window.last is None else self.window.last.is_drift,
            explain=explain,
            # Built only when asked for: feature values are personal data, and off the hot path.
            **({"payload": payload()} if self.telemetry.log_payloads and payload else {}),
        )

    def _feed_window(self, codes: np.ndarray, outliers: np.ndarray) -> None:
        due = self.window.add(codes, outliers)
        if due is None:
            return
        window_codes, outlier_rate = due
        window_scores = self.estimated.snapshot()

        def test() -> None:
            report = None
            try:
                self.estimated.publish(*window_scores)
                report = self._drift_test(window_codes)
                self.metrics.observe_window(report, outlier_rate)
            finally:
                self.window.tested(report)

        # Off the request path: a test on the window takes about a millisecond, but need not be waited for.
        self.window_task = asyncio.get_running_loop().run_in_executor(None, test)


def read_window(metrics_text: str) -> dict:
    """The window's gauges from a /metrics page (prometheus_client's own parser): ``is_drift``,
    ``threshold``, ``rows``, ``tests``, ``outlier_rate`` and ``p_value`` per feature."""
    names = {metric: key for key, metric in WINDOW_GAUGES.items()}
    values: dict = {"p_value": {}}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == WINDOW_P_VALUE:
                values["p_value"][sample.labels["feature"]] = sample.value
            elif sample.name in names:
                values[names[sample.name]] = sample.value
    return values
