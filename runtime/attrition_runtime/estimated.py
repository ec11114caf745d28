"""Performance estimated without labels (CBPE) on the sliding window's rows, as Prometheus gauges:
``attrition_estimated_roc_auc``, ``_precision``, ``_recall``, ``_f1`` (and the rows they cover).

Computed when the drift window is tested, off the request path, on the same last rows. The estimate
assumes calibrated probabilities (the bundle records its calibration); it sees covariate shift that
moves the probabilities, never concept shift (see the book's chapter on outcomes).
"""

from __future__ import annotations

import collections
import threading

import numpy as np
from prometheus_client import Gauge

from attrition.outcomes import cbpe

#: The gauges, by the metric they estimate.
ESTIMATED_GAUGES = {metric: f"attrition_estimated_{metric}" for metric in cbpe.ESTIMATED}
ESTIMATED_ROWS = "attrition_estimated_window_rows"
#: What training promised (the bundle's CV ROC AUC): the alert compares the estimate with it.
TRAINING_ROC_AUC = "attrition_training_cv_roc_auc"


class EstimatedPerformance:
    """The last ``size`` probabilities and predictions, and the gauges their estimate goes to."""

    def __init__(self, model_name: str, model_version: str, size: int, training_roc_auc: float | None = None):
        labels = {"model_name": model_name, "model_version": model_version}
        self._probability: collections.deque[float] = collections.deque(maxlen=size)
        self._predicted: collections.deque[bool] = collections.deque(maxlen=size)
        self._lock = threading.Lock()
        names = {**ESTIMATED_GAUGES, "rows": ESTIMATED_ROWS}
        # registry=None and mostrecent: as the other gauges (MLServer's multiprocess metrics).
        self.gauges = {
            key: Gauge(
                name,
                f"CBPE estimate over the sliding window: {key}",
                list(labels),
                registry=None,
                multiprocess_mode="mostrecent",
            ).labels(**labels)
            for key, name in names.items()
        }
        if training_roc_auc is not None:
            Gauge(
                TRAINING_ROC_AUC,
                "The bundle's training CV ROC AUC",
                list(labels),
                registry=None,
                multiprocess_mode="mostrecent",
            ).labels(**labels).set(training_roc_auc)

    def add(self, probability: np.ndarray, predicted: np.ndarray) -> None:
        with self._lock:
            self._probability.extend(float(p) for p in probability)
            self._predicted.extend(bool(y) for y in predicted)

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return np.fromiter(self._probability, float), np.fromiter(self._predicted, bool)

    def publish(self, probability: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        """Estimate and set the gauges (a NaN ROC AUC when the window holds a single row)."""
        estimate = cbpe.estimate(probability, predicted)
        for key, gauge in self.gauges.items():
            gauge.set(estimate[key])
        return estimate
