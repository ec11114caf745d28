"""Run by tests/test_alert_rules.py in a process of its own: prints the /metrics page of our series as a
server worker exports them, from the runtime's own metric objects rather than a list of names.

The worker's objects are built as runtime.py builds them (a Monitor, with the training ROC AUC a bundle
records, and the inference log's Logbook), in prometheus_client's multiprocess mode as MLServer switches
its workers to it, fed what one request and one window test feed them (a gauge in that mode is exported
only once set), and read back as MLServer's /metrics reads them (MultiProcessCollector). A process of
its own: the mode is a process-wide switch.

Usage: PROMETHEUS_MULTIPROC_DIR=DIR python exported_series.py INFERENCE_LOG_DIR MODEL_NAME MODEL_VERSION
"""

import logging
import os
import sys

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

from attrition.contract.schema import FEATURES
from attrition.contract.trust import DriftReport
from attrition_runtime.logbook import Logbook
from attrition_runtime.monitoring import DriftWindow, Monitor
from attrition_runtime.settings import RuntimeSettings


def never_called(codes):
    raise AssertionError("the window test's results are set directly below")


def feed(monitor: Monitor, rows: int) -> None:
    """What scoring ``rows`` rows and then testing the window set (the values do not matter here)."""
    probability = np.linspace(0.05, 0.95, rows)
    monitor.metrics.observe_scores(probability, outliers=0)
    monitor.estimated.add(probability, probability >= 0.5)
    monitor.estimated.publish(*monitor.estimated.snapshot())
    quiet = {feature: 1.0 for feature in FEATURES}
    report = DriftReport(False, quiet, dict.fromkeys(FEATURES, 0.0), 0.05 / len(FEATURES), rows)
    monitor.metrics.observe_window(report, outlier_rate=0.0)


def main() -> None:
    inference_log, model_name, model_version = sys.argv[1:4]
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR"), "set PROMETHEUS_MULTIPROC_DIR"
    values.ValueClass = values.get_value_class()  # what MLServer's configure_metrics does in a worker
    options = RuntimeSettings(inference_log=inference_log)
    window = DriftWindow(options.drift_window, options.drift_every, options.drift_min_interval_s)
    monitor = Monitor(model_name, model_version, never_called, window, training_roc_auc=0.8)
    feed(monitor, window.size)
    logbook = Logbook(options, model_name, model_version, "open", logging.getLogger("exported_series"))
    logbook.close()
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    sys.stdout.write(generate_latest(registry).decode())


if __name__ == "__main__":
    main()
