"""The default serving image run by podman as the production Deployment runs it (flags from the
rendered overlay: UID/GID 10001, read-only root, every capability dropped, no new privileges, the
emptyDirs as the only writable paths, the same environment and limits), with a model baked in
(``attrition export`` -> build arg MODEL_DIR), on published ports of 127.0.0.1; and the overlay's
inference log compaction CronJob run once the same way."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import yaml
from deltalake import DeltaTable
from helpers import ROOT, TrafficDuringFault
from images import raw_post, require_images, start
from prometheus_client.parser import text_string_to_metric_families

from attrition.bundle import export
from attrition.contract.schema import FEATURES
from attrition.contract.trust import MIN_DRIFT_ROWS
from attrition.inference_log import read
from attrition.inference_log.keys import ENTITY_INPUT
from attrition.inference_log.table import append
from attrition.inference_log.writer import request_rows, to_arrow
from attrition_runtime.client import EXAMPLE_EMPLOYEE, triton_inputs, v2_request
from attrition_runtime.settings import INFERENCE_LOG_ENV, RuntimeSettings, env_name
from attrition_runtime.wire import model_path
from attrition_tools import image
from attrition_tools.container import production_deployment, production_job
from attrition_tools.serve import SERVED_MODEL_NAME

pytestmark = pytest.mark.container

ALERT_RULES = ROOT / "kustomize" / "components" / "servicemonitor" / "prometheusrule.yaml"
ATTRITION_CLI = Path(sys.executable).parent / "attrition"
#: A value no log line may carry: feature values are personal data.
SENTINEL_INCOME = 98765
#: Where start.sh's baked-model rule looks (the Dockerfile's ATTRITION_BAKED_MODEL).
BAKED_PATH = "/opt/model"


@pytest.fixture(scope="module")
def exported(release, tmp_path_factory) -> Path:
    return export(release.model_uri, tmp_path_factory.mktemp("baked") / "model")


@pytest.fixture(scope="module")
def container(exported, tmp_path_factory):
    """The baked image with the overlay's environment less its registry selection (a baked deployment
    names no alias), so that start.sh serves the baked model."""
    require_images()
    tag = image.build_baked(exported, tmp_path_factory.mktemp("context"))
    running = start(tag, env={"ATTRITION_MODEL_ALIAS": None, "MLFLOW_TRACKING_URI": None})
    yield running
    running.remove()
    image.podman("rmi", "--force", tag, check=False)


def infer_url(container) -> str:
    return container.http_url + model_path(SERVED_MODEL_NAME, "infer")


def test_the_container_runs_as_the_manifest_says(container):
    deployment = production_deployment()
    assert {"--read-only", "--cap-drop", "no-new-privileges", "--user"} <= set(deployment.flags)
    status = container.exec("cat", "/proc/1/status").stdout
    assert re.search(r"^Uid:\s+10001\s", status, re.M) and re.search(r"^Gid:\s+10001\s", status, re.M)
    assert re.search(r"^CapEff:\s+0+$", status, re.M) and re.search(r"^NoNewPrivs:\s+1$", status, re.M)
    assert container.exec("touch", "/opt/venv/x").returncode != 0  # read-only root
    assert container.exec("touch", "/tmp/x", "/run/attrition/x").returncode == 0  # the emptyDirs


def test_rest_and_grpc_answer_what_attrition_predict_says(container, exported, release, tmp_path):
    rows = release.result.X_test.head(20)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    cli = subprocess.run(
        [str(ATTRITION_CLI), "predict", str(tmp_path / "rows.csv"), "--model-uri", str(exported)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    expected = pd.read_csv(pd.io.common.StringIO(cli.stdout))["probability"].to_numpy()
    records = rows.to_dict(orient="records")
    rest = httpclient.InferenceServerClient(container.http_url.removeprefix("http://"))
    grpc = grpcclient.InferenceServerClient(container.grpc_address)
    for client, protocol in ((rest, httpclient), (grpc, grpcclient)):
        answer = client.infer(SERVED_MODEL_NAME, triton_inputs(records, protocol))
        np.testing.assert_allclose(answer.as_numpy("probability"), expected, rtol=1e-9)
    body = requests.post(infer_url(container), json=v2_request(records[:1]), timeout=30).json()
    assert body["model_version"] == BAKED_PATH  # start.sh's baked-model rule chose the folder


def test_model_metadata_lists_the_contract(container):
    metadata = requests.get(container.http_url + f"/v2/models/{SERVED_MODEL_NAME}", timeout=10).json()
    assert metadata["name"] == SERVED_MODEL_NAME
    features = [i["name"] for i in metadata["inputs"] if not i["parameters"].get("optional")]
    assert features == list(FEATURES)
    assert [i["name"] for i in metadata["inputs"] if i["parameters"].get("optional")] == [ENTITY_INPUT]
    assert "probability" in {o["name"] for o in metadata["outputs"]}


def test_bad_input_is_a_4xx_naming_the_field(container):
    answer = requests.post(
        infer_url(container), json=v2_request([{**EXAMPLE_EMPLOYEE, "OverTime": "Sometimes"}]), timeout=30
    )
    assert answer.status_code == 400 and answer.json()["error"].startswith("OverTime")


def test_a_100_mb_body_is_refused_with_413(container):
    path = model_path(SERVED_MODEL_NAME, "infer")
    status, seconds = raw_post(container.host_ports["http"], path, 100 * 2**20, b" " * 2**20)
    assert status == 413 and seconds < 5


def test_one_json_log_line_per_request_without_feature_values(container):
    ids = [uuid.uuid4().hex for _ in range(3)]
    row = {**EXAMPLE_EMPLOYEE, "MonthlyIncome": SENTINEL_INCOME}
    for request_id in ids:
        body = {**v2_request([row]), "id": request_id}
        requests.post(infer_url(container), json=body, timeout=30).raise_for_status()
    time.sleep(0.5)
    stdout = container.stdout()
    records = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"event": "inference"')]
    for request_id in ids:
        assert sum(r.get("request_id") == request_id for r in records) == 1, request_id
    logs = container.logs()
    assert str(SENTINEL_INCOME) not in logs and not set(FEATURES) & {k for r in records for k in r}


def test_metrics_carry_every_series_the_alert_rules_query(container):
    """/metrics scraped through the published port; the PrometheusRule names only series it exports."""
    rules = yaml.safe_load(ALERT_RULES.read_text())["spec"]["groups"]
    used = {name for g in rules for r in g["rules"] for name in re.findall(r"\battrition_\w+", r["expr"])}
    assert used
    drift_window = int(production_deployment().env.get("ATTRITION_DRIFT_WINDOW", 0))
    rows = max(RuntimeSettings().drift_every, MIN_DRIFT_ROWS, drift_window)
    requests.post(
        infer_url(container), json=v2_request([EXAMPLE_EMPLOYEE] * rows), timeout=60
    ).raise_for_status()
    deadline = time.monotonic() + 30  # the window test runs off the request path
    while True:
        text = requests.get(container.metrics_url, timeout=10).text
        exported = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
        if used <= exported or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert used <= exported, used - exported


def _log_rows(day: dt.date, n: int = 2) -> pa.Table:
    rows = to_arrow([request_rows("r", [None] * n, "m", "1", "open", [0.5] * n, ["No"] * n, [0.1] * n,
                                  [False] * n, None)])  # fmt: skip
    return rows.set_column(rows.schema.get_field_index("date"), "date", pa.array([day] * n, pa.date32()))


def test_the_compaction_cronjob_runs_in_the_image_as_rendered(tmp_path):
    """The overlay's CronJob run by podman with its flags (user, read-only root, limits), command and
    environment, its ADLS location swapped for a mounted folder: the rendered retention deletes the
    day past it, the small files of the other day become one, and nothing is warned."""
    require_images()
    job = production_job()
    retention = int(job.env[env_name("inference_log_retention_days")])
    today = dt.datetime.now(dt.UTC).date()
    old, recent = today - dt.timedelta(days=retention + 1), today - dt.timedelta(days=1)
    log = tmp_path / "log"
    for day, commits in ((old, 3), (recent, 4)):
        for _ in range(commits):
            append(str(log), _log_rows(day))
    for path in [log, *log.rglob("*")]:  # the container's user (10001) owns nothing here
        path.chmod(0o777 if path.is_dir() else 0o666)
    args = job.run_args(
        image.tag("default"), {INFERENCE_LOG_ENV: "/log"}, "--network=none", f"--volume={log}:/log"
    )
    done = image.podman(*args, check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    assert "/log: deleted 6 rows past retention, compacted 4 files into 1," in done.stdout
    assert "warning" not in done.stdout + done.stderr
    assert len(DeltaTable(str(log)).file_uris()) == 1 and set(read(str(log))["date"]) == {recent}


KILL_WORKER = """
import os, signal
for pid in filter(str.isdigit, os.listdir("/proc")):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        if b"spawn_main" in f.read():
            os.kill(int(pid), signal.SIGKILL)
            print(pid)
"""


def test_a_worker_killed_inside_means_503_and_unready_then_back(container):
    ready_url = container.http_url + container.deployment.readiness_path
    body = v2_request([EXAMPLE_EMPLOYEE])
    with TrafficDuringFault(infer_url(container), ready_url, body, clients=2) as traffic:
        time.sleep(1.0)
        killed = time.monotonic()
        assert container.exec("python", "-c", KILL_WORKER).stdout.strip()
        deadline = killed + 20
        while time.monotonic() < deadline and not (
            traffic.failed_since(killed) and traffic.readiness[-1][1] == 200
        ):
            time.sleep(0.2)
        time.sleep(0.5)
    statuses, readiness = traffic.statuses, traffic.readiness
    assert {s for _, s in statuses} <= {200, 503}, {s for _, s in statuses}
    assert any(t > killed and s != 200 for t, s in readiness), "readiness never failed"
    assert readiness[-1][1] == 200 and [t for t, s in statuses if t > killed and s == 200]


def test_podman_stop_under_load_drains_and_exits_0_within_the_grace_period(container, release):
    """Last in this module: it stops the container. SIGTERM (podman stop) with requests in flight:
    every request the server accepted is answered, and the exit is clean well before SIGKILL."""
    body = json.dumps(v2_request(release.result.X_test.head(100).to_dict(orient="records")))
    outcomes: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                answer = requests.post(
                    infer_url(container), data=body, timeout=30,
                    headers={"Content-Type": "application/json", "Connection": "close"},
                )  # fmt: skip
                outcomes.append("ok" if answer.status_code == 200 else f"HTTP {answer.status_code}")
            except requests.ConnectionError as error:
                outcomes.append("closed" if "refused" in str(error).lower() else f"dropped: {error}")
                if "refused" in str(error).lower():
                    return

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2.0)
        seconds = container.stop()
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert container.exit_code() == 0, container.logs()[-3000:]
    assert seconds < container.deployment.grace_s
    failed = [o for o in outcomes if o not in ("ok", "closed")]
    assert outcomes.count("ok") >= 4 and not failed, failed[:5]
