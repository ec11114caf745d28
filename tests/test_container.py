"""The image's start path without Docker: ``runtime/container/start.sh`` (the Dockerfile's entry point)
serves a freshly exported bundle, as a model baked into the image, and answers a V2 request."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from helpers import ROOT
from prometheus_client.parser import text_string_to_metric_families

from attrition.bundle import export
from attrition.contract.schema import LABELS
from attrition.contract.trust import MIN_DRIFT_ROWS
from attrition_runtime.client import EXAMPLE_EMPLOYEE, v2_request
from attrition_runtime.settings import MODEL_ALIAS_ENV, MODEL_URI_ENV, RuntimeSettings
from attrition_tools.serve import SERVED_MODEL_NAME, SERVER_DIR, Server, free_ports

pytestmark = [pytest.mark.container, pytest.mark.server, pytest.mark.train]

START_SH = ROOT / "runtime" / "container" / "start.sh"
ALERT_RULES = ROOT / "kustomize" / "components" / "servicemonitor" / "prometheusrule.yaml"
#: The folder of this interpreter's console scripts (``mlserver``), as /opt/venv/bin is in the image.
SCRIPTS = Path(sys.executable).parent


class EntryPoint(Server):
    """:class:`Server` (same environment, readiness polling and process-group stop) running the image's
    entry point instead of ``mlserver start``, with only what the image and the Deployment set."""

    def __init__(self, baked_model: Path, workdir: Path, ports: dict[str, int]):
        super().__init__(
            str(baked_model), ports=ports, log_path=workdir / "container.log", command=[str(START_SH)]
        )
        self.baked_model, self.workdir = baked_model, workdir

    def environment(self) -> dict[str, str]:
        env = super().environment()
        # Left to start.sh (defaults) and to the baked-model rule: no registry, no model URI.
        for name in ("MLSERVER_METRICS_DIR", "MLSERVER_ENVIRONMENTS_DIR", "MLFLOW_TRACKING_URI",
                     MODEL_URI_ENV, MODEL_ALIAS_ENV):  # fmt: skip
            env.pop(name, None)
        env.update(
            PATH=f"{SCRIPTS}:{env.get('PATH', '')}",
            ATTRITION_SERVER_DIR=str(SERVER_DIR),
            ATTRITION_BAKED_MODEL=str(self.baked_model),
            ATTRITION_RUNTIME_TMP=str(self.workdir / "runtime"),
            ATTRITION_HOME=str(self.workdir / "home"),
        )
        return env


@pytest.fixture(scope="module")
def container(release, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("container")
    model = export(release.model_uri, workdir / "model")
    stale = workdir / "runtime" / "metrics" / "counter_1.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by a previous container")
    with EntryPoint(model, workdir, free_ports()) as running:
        yield running


def test_start_script_serves_a_baked_model_over_v2(container):
    response = requests.post(
        f"{container.http_url}/v2/models/{SERVED_MODEL_NAME}/infer",
        json=v2_request([EXAMPLE_EMPLOYEE]),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == SERVED_MODEL_NAME
    # Served from the folder chosen by start.sh's baked-model rule, not from the registry.
    assert body["model_version"] == str(container.baked_model)
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    assert set(outputs) == {"probability", "prediction", "outlier_score", "is_outlier"}
    (probability,) = outputs["probability"]
    assert 0.0 <= probability <= 1.0
    assert outputs["prediction"] in ([LABELS[0]], [LABELS[1]])
    assert isinstance(outputs["outlier_score"][0], float)
    assert isinstance(outputs["is_outlier"][0], bool)


def test_start_script_puts_metrics_in_a_fresh_writable_dir(container):
    requests.post(
        f"{container.http_url}/v2/models/{SERVED_MODEL_NAME}/infer",
        json=v2_request([EXAMPLE_EMPLOYEE]),
        timeout=30,
    ).raise_for_status()
    metrics = requests.get(container.metrics_url, timeout=10).text
    assert "attrition_rows_total{" in metrics
    files = {p.name for p in (container.workdir / "runtime" / "metrics").iterdir()}
    assert "counter_1.db" not in files  # the stale file was removed at start
    assert any(name.endswith(".db") for name in files)


def test_alert_rules_query_series_the_server_exports(container):
    """The PrometheusRule's expressions name only series this server publishes (a renamed metric would
    otherwise silence an alert without any error)."""
    rules = yaml.safe_load(ALERT_RULES.read_text())["spec"]["groups"]
    used = {name for g in rules for r in g["rules"] for name in re.findall(r"\battrition_\w+", r["expr"])}
    assert used
    # Enough rows for one sliding-window drift test, whose gauges exist only once it has run.
    rows = max(RuntimeSettings().drift_every, MIN_DRIFT_ROWS)
    requests.post(
        f"{container.http_url}/v2/models/{SERVED_MODEL_NAME}/infer",
        json=v2_request([EXAMPLE_EMPLOYEE] * rows),
        timeout=60,
    ).raise_for_status()
    deadline = time.monotonic() + 20  # the window test runs off the request path
    while True:
        text = requests.get(container.metrics_url, timeout=10).text
        exported = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
        if used <= exported or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert used <= exported, used - exported
