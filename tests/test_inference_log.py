"""The inference log on a real server: what is stored (hashed keys, no raw ids, no feature values),
that SIGTERM loses nothing answered, what ``kill -9`` can lose (at most one commit interval), the same
through Azurite's real Azure Blob API with a storage outage, and the writer's own bounds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import requests
import tritonclient.grpc as grpcclient

from attrition.contract.schema import FEATURES
from attrition.inference_log import COLUMNS, ENTITY_INPUT, ENTITY_KEY_ENV, hash_entities, read
from attrition.training import data
from attrition_runtime.client import triton_inputs, v2_request
from attrition_runtime.settings import INFERENCE_LOG_ENV
from attrition_runtime.wire import model_path
from attrition_tools.azurite import Azurite
from attrition_tools.serve import SERVED_MODEL_NAME, SERVER_DIR, Server, free_ports, mlserver_command

pytestmark = pytest.mark.server

SECRET = "test-secret"
COMMIT_S = 1.0
#: A commit in progress when the process dies is lost too: its rows were taken before it started.
COMMIT_SLACK_S = 2.0


@pytest.fixture(scope="module")
def employees() -> pd.DataFrame:
    return data.load_raw().head(40)


def _rows(frame: pd.DataFrame) -> list[dict]:
    return frame.loc[:, list(FEATURES)].to_dict("records")


def _server(release, location: str, tmp_path: Path, workers: int = 1, **env: str) -> Server:
    """Our server logging to ``location``; with ``workers`` MLServer inference workers."""
    from attrition import config

    folder = tmp_path / "settings"
    folder.mkdir()
    shutil.copy(SERVER_DIR / "model-settings.json", folder)
    settings = json.loads((SERVER_DIR / "settings.json").read_text()) | {"parallel_workers": workers}
    (folder / "settings.json").write_text(json.dumps(settings))
    env = {INFERENCE_LOG_ENV: location, "ATTRITION_INFERENCE_LOG_COMMIT_S": str(COMMIT_S), **env}
    uri = config.model_uri(config.PRODUCTION)
    return Server(
        uri, ports=free_ports(), env=env, log_path=tmp_path / "log", command=mlserver_command(folder)
    )


def _infer(server: Server, rows: list[dict], ids: list | None = None) -> requests.Response:
    url = server.http_url + model_path(SERVED_MODEL_NAME, "infer")
    return requests.post(url, json=v2_request(rows, {"drift": False}, employee_ids=ids), timeout=30)


def _send_rest_and_grpc(server: Server, employees: pd.DataFrame) -> dict[str, list]:
    """REST with INT64 ids, gRPC with BYTES ids, a request of each without ids; the answered ids by
    the answer's id."""
    # Ids no other column could hold by chance (a row index, a model version).
    ids = (employees["EmployeeNumber"].astype(int) + 700_000).tolist()
    rows = _rows(employees)
    answered = {}
    response = _infer(server, rows[:20], ids[:20])
    assert response.status_code == 200, response.text
    answered[response.json()["id"]] = ids[:20]
    client = grpcclient.InferenceServerClient(server.grpc_address)
    inputs = triton_inputs(rows[20:], grpcclient, [f"E{i}" for i in ids[20:]])
    sent = str(uuid.uuid4())
    result = client.infer(SERVED_MODEL_NAME, inputs, request_id=sent)
    assert result.get_response().id == sent  # a client's own id is kept
    answered[sent] = [f"E{i}" for i in ids[20:]]
    response = _infer(server, rows[:3])
    answered[response.json()["id"]] = [None] * 3
    # Without a request id, the gRPC answer carries the one its rows were logged under.
    result = client.infer(SERVED_MODEL_NAME, triton_inputs(rows[:2], grpcclient))
    assert result.get_response().id
    answered[result.get_response().id] = [None] * 2
    return answered


def test_rows_are_logged_with_hashed_keys_and_nothing_answered_is_lost_on_sigterm(
    release, employees, tmp_path
):
    """Two inference workers append to one table (each with its own writer, committing at the same
    moments: Delta's optimistic concurrency sorts them out)."""
    location = str(tmp_path / "inference-log")
    server = _server(release, location, tmp_path, workers=2, **{ENTITY_KEY_ENV: SECRET})
    with server:
        metadata = requests.get(server.http_url + model_path(SERVED_MODEL_NAME), timeout=10).json()
        answered = {}
        for _ in range(3):  # spread over both workers (MLServer's round robin)
            answered |= _send_rest_and_grpc(server, employees)
        bad = _infer(server, _rows(employees.head(2)), [1.5, 2.5])
        assert bad.status_code == 400 and ENTITY_INPUT in bad.text
        wrong_count = _infer(server, _rows(employees.head(2)), [1])
        assert wrong_count.status_code == 400 and ENTITY_INPUT in wrong_count.text
    assert server.process.returncode == 0
    entity = [t for t in metadata["inputs"] if t["name"] == ENTITY_INPUT]
    assert entity and entity[0]["parameters"]["optional"] is True

    log = read(location)
    assert tuple(log.columns) == COLUMNS  # no feature column
    assert len(log) == sum(len(ids) for ids in answered.values())
    for request_id, ids in answered.items():
        rows = log[log["request_id"] == request_id].sort_values("row_index")
        assert rows["row_index"].tolist() == list(range(len(ids)))
        expected = [None if i is None else key for i, key in zip(ids, _keys(ids), strict=True)]
        assert [None if pd.isna(k) else k for k in rows["entity_key"]] == expected
    stored = set(log.astype(str).to_numpy().ravel())
    raw = {str(i) for ids in answered.values() for i in ids if i is not None}
    assert not raw & stored, "a raw employee id was stored"
    assert log["probability"].between(0, 1).all() and log["model_name"].eq(SERVED_MODEL_NAME).all()
    assert (tmp_path / "log").read_text().count("inference log: flushed and closed (0 rows") == 2


def _keys(ids: list) -> list:
    return hash_entities([0 if i is None else i for i in ids], SECRET)


def test_kill_9_loses_at_most_one_commit_interval_and_no_secret_means_no_keys(release, employees, tmp_path):
    location = str(tmp_path / "inference-log")
    env = {ENTITY_KEY_ENV: "", "ATTRITION_INFERENCE_LOG_COMMIT_ROWS": "100000"}
    server = _server(release, location, tmp_path, **env)
    answered: list[tuple[float, str]] = []
    rows = _rows(employees.head(1))
    with server:
        deadline = time.monotonic() + 4 * COMMIT_S
        while time.monotonic() < deadline:
            response = _infer(server, rows, [7])
            assert response.status_code == 200
            answered.append((time.monotonic(), response.json()["id"]))
        killed_at = time.monotonic()
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
    start_log = (tmp_path / "log").read_text()
    assert f"{ENTITY_INPUT} will not be stored" in start_log and ENTITY_KEY_ENV in start_log

    logged = set(read(location)["request_id"])
    lost = [at for at, request_id in answered if request_id not in logged]
    assert len(logged) >= len(answered) / 4, "the commits before the kill are missing"
    # What was answered more than one commit interval (plus a commit's own time) before the kill is there.
    assert not lost or killed_at - min(lost) <= COMMIT_S + COMMIT_SLACK_S, (
        f"lost rows answered {killed_at - min(lost):.2f} s before the kill"
    )
    assert read(location)["entity_key"].isna().all()


def _metric(server: Server, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(server.metrics_url, timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def test_azurite_outage_gives_no_5xx_and_loses_nothing(release, employees, tmp_path, monkeypatch):
    """The runtime writes to an abfss:// URL through Azurite's Azure Blob API, the code path of Azure;
    storage stops for a while mid-traffic: every request still gets 200, the rows wait in the buffer,
    and after SIGTERM every answered row is in the table."""
    rows, ids = _rows(employees.head(5)), list(range(5))
    with Azurite() as azurite:
        azurite.create_container("logs")
        location = azurite.location("logs", "inference-log")
        env = {ENTITY_KEY_ENV: SECRET, **azurite.environment()}
        server = _server(release, location, tmp_path, **env)
        answered: list[str] = []
        with server:

            def send(seconds: float) -> None:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    response = _infer(server, rows, ids)
                    assert response.status_code == 200, response.text
                    answered.append(response.json()["id"])

            send(2 * COMMIT_S)
            azurite.stop()
            send(4 * COMMIT_S)
            assert _metric(server, "attrition_inference_log_failed_commits_total") >= 1
            azurite.start()
            send(COMMIT_S)
            assert _metric(server, "attrition_inference_log_dropped_rows_total") == 0
        assert server.process.returncode == 0
        for name, value in azurite.environment().items():
            monkeypatch.setenv(name, value)
        log = read(location)
    assert set(log["request_id"]) == set(answered) and len(log) == 5 * len(answered)
    assert set(log["entity_key"]) == set(hash_entities(ids, SECRET))


def test_predict_and_score_table_append_the_same_keys_and_scores(release, employees, tmp_path, monkeypatch):
    """The command line's scores go into the same log, with the same hashed keys: batch and online
    answers join the outcomes alike."""
    from attrition import batch, cli

    monkeypatch.setenv(ENTITY_KEY_ENV, SECRET)
    frame = employees.head(12)
    frame.to_csv(tmp_path / "employees.csv", index=False)
    frame.to_parquet(tmp_path / "employees.parquet", index=False)
    location = str(tmp_path / "log")
    out = tmp_path / "predicted.csv"
    assert cli.main(["predict", str(tmp_path / "employees.csv"), "-o", str(out), "--log", location]) == 0
    assert pd.read_csv(out)["EmployeeNumber"].tolist() == frame["EmployeeNumber"].tolist()
    spark = batch.local_spark(cores=1)
    try:
        assert cli.main(["score-table", str(tmp_path / "employees.parquet"), "--log", location]) == 0
    finally:
        spark.stop()
    log = read(location)
    assert tuple(log.columns) == COLUMNS and len(log) == 24 and log["request_id"].nunique() == 2
    keys = hash_entities(frame["EmployeeNumber"].tolist(), SECRET)
    by_run = [run.set_index("entity_key").loc[keys] for _, run in log.groupby("request_id")]
    assert (by_run[0]["probability"] - by_run[1]["probability"]).abs().max() < 1e-9
    assert set(log["trust_backend"]) == {"alibi"}  # the session's bundle, from the registry's tag


@pytest.mark.timeout(300)
def test_soak_on_azurite_with_a_storage_outage_loses_no_answered_row(release, tmp_path):
    """``make soak``'s logged run, short: Azurite stops for a third of it; no 5xx, and after SIGTERM
    every row answered 200 is in the table (or counted as dropped), none twice."""
    from attrition import config
    from attrition_tools import soak

    settings = soak.SoakSettings(seconds=24.0, concurrency=8, outage_s=6.0, explain_share=0.0)
    report = soak.soak_logged(config.model_uri(config.PRODUCTION), settings, tmp_path / "mlserver.log")
    log = report["inference_log"]
    assert report["totals"]["classes"]["5xx"] == 0 and report["totals"]["classes"]["transport"] == 0
    assert log["failed_commits"] >= 1, "the outage did not reach the writer"
    # Every request answered 200 is matched by its id (one id each), then row by row in the table.
    assert log["rows_answered"] == report["totals"]["rows_answered"] > 0
    assert log["rows_missing"] == 0 and log["rows_logged_twice"] == 0, log
    assert log["rows_answered_not_logged"] <= log["rows_dropped"]


def test_a_full_buffer_and_failing_storage_never_fail_a_request_and_are_counted(release, employees, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("the table's parent is a file: every commit fails")
    env = {"ATTRITION_INFERENCE_LOG_BUFFER_ROWS": "10", "ATTRITION_INFERENCE_LOG_FLUSH_TIMEOUT_S": "1"}
    server = _server(release, str(blocker / "log"), tmp_path, **env)
    rows = _rows(employees.head(3))
    with server:
        for _ in range(10):
            assert _infer(server, rows).status_code == 200
        deadline = time.monotonic() + 20
        while _metric(server, "attrition_inference_log_failed_commits_total") < 1:
            assert time.monotonic() < deadline, "no failed commit counted"
            time.sleep(0.2)
        dropped = _metric(server, "attrition_inference_log_dropped_rows_total")
    assert dropped == 30 - 9  # three requests (9 rows) fit in the buffer of 10
    output = (tmp_path / "log").read_text()
    assert "inference log: dropped 3 rows because the buffer is full" in output
    assert "flushed and closed (9 rows could not be written)" in output
