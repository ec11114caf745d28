"""The commands as users type them: `attrition ...` and `make serve`'s `python -m attrition_tools.serve`."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from attrition import cli, config
from attrition.training import data
from attrition_tools.serve import free_ports

pytestmark = pytest.mark.unit

ATTRITION = str(Path(sys.executable).parent / "attrition")  # the console script of this environment


def test_help_lists_the_commands():
    out = subprocess.run([ATTRITION, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("train", "promote", "export", "predict"):
        assert command in out


@pytest.mark.train
def test_predict_scores_a_csv_by_alias(release, tmp_path):
    raw = data.load_raw().head(40)
    raw.to_csv(tmp_path / "employees.csv", index=False)
    command = [ATTRITION, "predict", str(tmp_path / "employees.csv"), "-o", str(tmp_path / "scored.csv")]
    done = subprocess.run([*command, "--drift"], check=True, capture_output=True, text=True)
    assert "batch drift: False" in done.stderr
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert list(scored["EmployeeNumber"]) == list(raw["EmployeeNumber"])
    assert scored["probability"].between(0, 1).all()


def test_train_without_data_says_where_to_put_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "URL", "http://127.0.0.1:9/unreachable.csv")
    assert cli.main(["train", "--quick", "--data-dir", str(tmp_path)]) == 2
    assert f"Put the file there, or set {data.DATA_DIR_ENV}" in capsys.readouterr().err


def _serve(env: dict[str, str]) -> subprocess.Popen:
    """``make serve``'s command, in a session of its own (so that a test can always kill what it left)."""
    return subprocess.Popen(
        [sys.executable, "-m", "attrition_tools.serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def _until_curl(process: subprocess.Popen, timeout: float) -> list[str]:
    """Its output up to the curl example, which it prints once the model answers."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            pytest.fail(f"serve exited early: {''.join(lines)}")
        lines.append(line)
        if line.startswith("curl "):
            return lines
    pytest.fail(f"serve printed no curl example within {timeout:.0f} s")


@pytest.mark.server
@pytest.mark.train
def test_serve_trains_on_an_empty_registry_and_prints_a_working_curl(tmp_path):
    ports = free_ports()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",  # empty registry: serve must train first
        "MLSERVER_HTTP_PORT": str(ports["http"]),
        "MLSERVER_GRPC_PORT": str(ports["grpc"]),
        "MLSERVER_METRICS_PORT": str(ports["metrics"]),
    }
    process = _serve(env)
    try:
        lines = _until_curl(process, 240)
        output = "".join(lines)
        assert f"registered {config.MODEL_NAME} version 1" in output
        assert "ready in" in output and f"127.0.0.1:{ports['http']}" in output
        answer = subprocess.run(
            shlex.split(lines[-1]), capture_output=True, text=True, check=True, timeout=60
        )
        outputs = {o["name"]: o["data"] for o in json.loads(answer.stdout)["outputs"]}
        assert 0 <= outputs["probability"][0] <= 1 and outputs["prediction"][0] in {"Yes", "No"}
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.server
@pytest.mark.train
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_mlserver_and_exits_on_a_signal(release, signum):
    """A supervisor's SIGTERM (or Ctrl-C's SIGINT) to the launcher alone: it stops MLServer and exits."""
    import psutil

    ports = free_ports()
    env = {**os.environ, **{f"MLSERVER_{name.upper()}_PORT": str(port) for name, port in ports.items()}}
    process = _serve(env)
    try:
        _until_curl(process, 120)
        children = psutil.Process(process.pid).children(recursive=True)
        assert children  # MLServer and its worker
        process.send_signal(signum)  # to the launcher only, not its process group
        assert process.wait(timeout=45) == 0
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
