"""Production behaviour against the real server: readiness means the model answers, a bundle that must
not be served is refused with a non-zero exit, an unreachable registry ends the start in bounded time,
oversize bodies are refused before they are parsed, explanation floods are shed with Retry-After while
scoring keeps its latency, concurrent explanations never mix rows up, and SIGTERM drops no request."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests
from helpers import TrafficDuringFault

from attrition import bundle, config
from attrition_runtime.client import EXAMPLE_EMPLOYEE, v2_request
from attrition_runtime.wire import model_path
from attrition_tools.serve import SERVED_MODEL_NAME, Server, free_ports

pytestmark = [pytest.mark.server, pytest.mark.train]

ANCHOR_BUDGET_S = 2.0


@pytest.fixture(scope="module")
def guarded(release, tmp_path_factory):
    """A server with one anchor run and four explanation requests per worker at most."""
    env = {
        "ATTRITION_ANCHOR_BUDGET_S": str(ANCHOR_BUDGET_S),
        "ATTRITION_MAX_CONCURRENT_ANCHORS": "1",
        "ATTRITION_MAX_QUEUED_EXPLANATIONS": "4",
    }
    log = tmp_path_factory.mktemp("guarded") / "mlserver.log"
    with Server(config.model_uri(config.PRODUCTION), ports=free_ports(), env=env, log_path=log) as running:
        yield running


def infer_url(server: Server) -> str:
    return server.http_url + model_path(SERVED_MODEL_NAME, "infer")


def post(server: Server, body: dict, timeout: float = 60) -> requests.Response:
    return requests.post(infer_url(server), json=body, timeout=timeout)


def tree_rss_mib(pid: int) -> float:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def test_unloaded_model_fails_the_readiness_probe(release, tmp_path):
    """The probes check the model: after MLServer's unload endpoint, /v2/health/ready still says 200."""
    with Server(config.model_uri(config.PRODUCTION), ports=free_ports(), log_path=tmp_path / "log") as server:
        ready = server.http_url + model_path(SERVED_MODEL_NAME, "ready")
        assert requests.get(ready, timeout=10).status_code == 200
        unload = f"{server.http_url}/v2/repository/models/{SERVED_MODEL_NAME}/unload"
        assert requests.post(unload, timeout=30).status_code == 200  # from the pod's loopback: allowed
        assert requests.get(ready, timeout=10).status_code != 200
        assert requests.get(f"{server.http_url}/v2/health/ready", timeout=10).status_code == 200


def _exported(release, folder: Path) -> Path:
    bundle.export(config.model_uri(config.PRODUCTION), folder)
    return folder


def test_bundle_built_with_another_scikit_learn_is_refused(release, tmp_path):
    folder = _exported(release, tmp_path / "model")
    (info_file,) = folder.rglob("bundle.json")
    info = json.loads(info_file.read_text())
    installed = info["versions"]["scikit-learn"]
    info["versions"]["scikit-learn"] = "0.0.1"
    info_file.write_text(json.dumps(info))
    assert Server(str(folder), ports=free_ports(), log_path=tmp_path / "log").refused(90) == 3
    log = (tmp_path / "log").read_text()
    assert "scikit-learn: the bundle was built with scikit-learn 0.0.1" in log and installed in log


def test_unreachable_registry_ends_the_start_in_bounded_time(release, tmp_path):
    closed_port = free_ports()["http"]
    env = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed_port}", "ATTRITION_REGISTRY_TIMEOUT_S": "3"}
    server = Server(
        config.model_uri(config.PRODUCTION), ports=free_ports(), env=env, log_path=tmp_path / "log"
    )
    started = time.monotonic()
    server.start()
    try:
        assert server.process.wait(timeout=60) == 3
    finally:
        server.stop()
    assert time.monotonic() - started < 45
    log = (tmp_path / "log").read_text()
    line = (
        f"registry: could not load {config.model_uri(config.PRODUCTION)} from http://127.0.0.1:{closed_port}"
    )
    assert line in log and "within 3 s" in log


def _raw_http(server: Server, head: bytes, body_chunks=(), timeout: float = 10) -> tuple[int, bytes, float]:
    """Status line and the seconds until the answer, on a raw socket (a client that sends its headers
    and waits, as curl does for large bodies)."""
    host, port = server.host, server.ports["http"]
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(head)
        try:
            for chunk in body_chunks:
                connection.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the body was all sent
        answer = b""
        while not _complete(answer):
            data = connection.recv(65536)
            if not data:
                break
            answer += data
    return int(answer.split(b" ", 2)[1]), answer, time.monotonic() - started


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def test_100_mb_body_is_refused_at_once_without_memory(guarded):
    before = tree_rss_mib(guarded.process.pid)
    path = model_path(SERVED_MODEL_NAME, "infer").encode()
    head = (
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 104857600\r\n\r\n"
    )
    status, answer, seconds = _raw_http(guarded, head)
    assert status == 413 and seconds < 1.0 and b"max_body_bytes" in answer
    # Without a Content-Length: the streamed bytes are counted and the request refused past the limit.
    chunked = (
        b"POST "
        + path
        + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    status, _, seconds = _raw_http(guarded, chunked, [chunk] * 100)
    assert status == 413 and seconds < 5
    assert tree_rss_mib(guarded.process.pid) - before < 50
    assert post(guarded, v2_request([EXAMPLE_EMPLOYEE] * 1000)).status_code == 200  # the maximum batch fits


def test_concurrent_explanations_each_get_their_own_row(guarded, release):
    rows = release.result.X_test.head(4).to_dict(orient="records")
    alone = []
    for row in rows:
        answer = post(guarded, v2_request([row], {"explain": True}))
        assert answer.status_code == 200
        alone.append(_explanation(answer))
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda i: post(guarded, v2_request([rows[i % 4]], {"explain": True})), range(16))
        )
    for i, answer in enumerate(answers):
        if answer.status_code == 429:
            assert answer.headers["Retry-After"] and "max_queued_explanations" in answer.text
            continue
        assert answer.status_code == 200, answer.text
        assert _explanation(answer) == alone[i % 4]
    assert sum(a.status_code == 200 for a in answers) >= 4


def _explanation(answer: requests.Response) -> dict:
    (output,) = [o for o in answer.json()["outputs"] if o["name"] == "explanation"]
    return json.loads(output["data"][0])


def _one_row_p99(server: Server, n: int = 60) -> float:
    body = v2_request([EXAMPLE_EMPLOYEE])
    with requests.Session() as session:
        latencies = []
        for _ in range(n):
            started = time.perf_counter()
            assert session.post(infer_url(server), json=body, timeout=30).status_code == 200
            latencies.append(time.perf_counter() - started)
    return float(np.percentile(latencies, 99))


def test_anchor_flood_is_shed_and_scoring_keeps_its_latency(guarded, release):
    rows = release.result.X_test.head(16).to_dict(orient="records")
    # The worker's first anchor request imports alibi (seconds of CPU, once): not what this measures.
    assert post(guarded, v2_request(rows[:1], {"explain": "anchors"})).status_code == 200
    idle = _one_row_p99(guarded)
    with ThreadPoolExecutor(16) as pool:
        flood = [pool.submit(post, guarded, v2_request([row], {"explain": "anchors"})) for row in rows]
        time.sleep(0.3)
        busy = _one_row_p99(guarded)
        answers = [f.result() for f in flood]
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) >= 1 and statuses.count(429) >= 8, statuses
    for answer in answers:
        if answer.status_code == 429:
            assert answer.headers["Retry-After"] == "1" and "explain" in answer.text
    assert busy < 5 * max(idle, 0.01), (idle, busy)


def test_sigterm_under_load_answers_every_request_it_accepted(release, tmp_path):
    server = Server(config.model_uri(config.PRODUCTION), ports=free_ports(), log_path=tmp_path / "log")
    server.__enter__()
    outcomes: list[str] = []
    stop = threading.Event()
    body = json.dumps(v2_request(release.result.X_test.head(100).to_dict(orient="records")))

    def client() -> None:
        while not stop.is_set():
            try:
                answer = requests.post(
                    infer_url(server),
                    data=body,
                    headers={"Content-Type": "application/json", "Connection": "close"},
                    timeout=30,
                )
                outcomes.append("ok" if answer.status_code == 200 else f"HTTP {answer.status_code}")
            except requests.ConnectionError as error:
                refused = "Connection refused" in str(error) or "Errno 111" in str(error)
                outcomes.append("refused" if refused else f"dropped: {error}")
                if refused:
                    return

    threads = [threading.Thread(target=client) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        os.kill(server.process.pid, signal.SIGTERM)  # as Kubernetes does: to the main process only
        assert server.process.wait(timeout=60) == 0
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        server.stop()
    answered = [o for o in outcomes if o == "ok"]
    failed = [o for o in outcomes if o not in ("ok", "refused")]
    assert len(answered) > 8 and not failed, failed[:5]


def test_rest_errors_start_with_the_field(guarded):
    """MLServer prefixes worker errors with a class path; REST clients get the field first."""
    answer = post(guarded, v2_request([{**EXAMPLE_EMPLOYEE, "OverTime": "Sometimes"}]))
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("OverTime: unknown category 'Sometimes'")


def test_a_killed_worker_means_503_and_unready_until_its_replacement_is_up(release, tmp_path):
    """An OOM kill of the worker: only 503s with Retry-After (no 500, no dropped connection), readiness
    non-200 during the gap, and both back within 10 s."""
    server = Server(config.model_uri(config.PRODUCTION), ports=free_ports(), log_path=tmp_path / "log")
    server.__enter__()
    body = v2_request([EXAMPLE_EMPLOYEE])
    ready_url = server.http_url + model_path(SERVED_MODEL_NAME, "ready")
    try:
        with TrafficDuringFault(infer_url(server), ready_url, body, clients=4) as traffic:
            time.sleep(1.0)
            (worker,) = [
                p
                for p in psutil.Process(server.process.pid).children()
                if "spawn_main" in " ".join(p.cmdline())
            ]
            killed = time.monotonic()
            worker.kill()
            deadline = killed + 10
            while time.monotonic() < deadline and not (
                traffic.failed_since(killed)
                and traffic.statuses[-1][1] == 200
                and traffic.readiness[-1][1] == 200
            ):
                time.sleep(0.2)
            time.sleep(1.0)
    finally:
        server.stop()
    statuses, readiness = traffic.statuses, traffic.readiness
    assert traffic.missing_retry_after == 0, "a 503 without Retry-After"
    outcomes = {s for _, s in statuses}
    assert outcomes <= {200, 503}, outcomes
    assert any(t > killed and s != 200 for t, s in readiness), "readiness never failed during the gap"
    recovered = [t for t, s in statuses if t > killed and s == 200]
    assert recovered and recovered[0] - killed < 10 and readiness[-1][1] == 200
