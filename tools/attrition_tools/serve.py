"""Start the V2 server for development: ``make serve``, and tests, the book and the tools through
:class:`Server`. Not shipped in the image (the container starts MLServer with runtime/container/start.sh).

Trains and registers a bundle first when the registry has none, binds 127.0.0.1 by default, prints a
ready line with a curl example once the model answers, and stops MLServer on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from attrition import config, registry
from attrition_runtime.client import EXAMPLE_EMPLOYEE, v2_request
from attrition_runtime.settings import INFERENCE_LOG_ENV, MODEL_URI_ENV, RuntimeSettings
from attrition_runtime.wire import DEFAULT_PORTS, model_path

#: Folder with settings.json and model-settings.json: ``runtime/`` of the checkout.
SERVER_DIR = Path(os.environ.get("ATTRITION_SERVER_DIR", config.project_home() / "runtime"))
#: The name clients use in /v2/models/<name>, as model-settings.json declares it for MLServer.
SERVED_MODEL_NAME: str = json.loads((SERVER_DIR / "model-settings.json").read_text())["name"]
READY_TIMEOUT_S = 120.0


def free_ports(host: str = "127.0.0.1") -> dict[str, int]:
    """Three ports nobody listens on now (tests, the book and the benchmark run servers on them)."""
    ports = {}
    for name in ("http", "grpc", "metrics"):
        with socket.socket() as probe:
            probe.bind((host, 0))
            ports[name] = probe.getsockname()[1]
    return ports


def mlserver_command(folder: Path = SERVER_DIR, stock: bool = False) -> list[str]:
    """Start MLServer on a settings folder with this interpreter: through attrition_runtime.start, as
    the container does, or (``stock``) with MLServer's own ``mlserver start``."""
    if stock:
        return [sys.executable, "-m", "mlserver.cli.main", "start", str(folder)]
    return [sys.executable, "-m", "attrition_runtime.start", str(folder)]


def default_ports() -> dict[str, int]:
    """MLServer's defaults, or its ``MLSERVER_HTTP_PORT`` / ``_GRPC_PORT`` / ``_METRICS_PORT`` overrides."""
    return {
        name: int(os.environ.get(f"MLSERVER_{name.upper()}_PORT", port))
        for name, port in DEFAULT_PORTS.items()
    }


def ensure_model(progress=print) -> str:
    """The model URI to serve; trains and registers a first bundle when the registry has none."""
    settings = RuntimeSettings()
    if settings.model_uri:
        return settings.model_uri
    if registry.alias_version(settings.model_alias) is None:
        wanted = f"{config.MODEL_NAME}@{settings.model_alias}"
        progress(f"no {wanted} in {config.tracking_uri()}: training one first ...")
        from attrition.training.release import train_and_register

        train_and_register(progress=progress)
    return settings.resolve_model_uri()


class Server:
    """MLServer in a child process with our settings; a context manager that always stops it."""

    def __init__(
        self,
        model_uri: str,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        command: list[str] | None = None,
    ):
        self.model_uri, self.host = model_uri, host
        self.ports = ports or default_ports()
        self._extra_env = env or {}
        self.log_path = log_path
        #: What to run: ``mlserver start`` on our settings, or e.g. the container's start script.
        self.command = command or mlserver_command()
        self.process: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="attrition-mlserver-")

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.ports['http']}"

    @property
    def grpc_address(self) -> str:
        return f"{self.host}:{self.ports['grpc']}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.ports['metrics']}/metrics"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "MLSERVER_HOST": self.host,
                "MLSERVER_HTTP_PORT": str(self.ports["http"]),
                "MLSERVER_GRPC_PORT": str(self.ports["grpc"]),
                "MLSERVER_METRICS_PORT": str(self.ports["metrics"]),
                # Fresh per run: stale multiprocess metric files would leak old values into /metrics.
                "MLSERVER_METRICS_DIR": os.path.join(self._tmp.name, "metrics"),
                "MLSERVER_ENVIRONMENTS_DIR": os.path.join(self._tmp.name, "envs"),
                "MLFLOW_TRACKING_URI": config.tracking_uri(),
                MODEL_URI_ENV: self.model_uri,
                "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self._extra_env)
        return env

    def start(self) -> Server:
        output = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 (closed in stop)
        self._output = output
        self.process = subprocess.Popen(
            self.command,
            env=self.environment(),
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Seconds until the model answered ready; raises if the server died or timed out.

        The model's own endpoint, not /v2/health/ready: that one says 200 while no model is loaded yet.
        """
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(
                    f"MLServer exited with code {self.process and self.process.returncode}; "
                    f"see {self.log_path or 'its output'}"
                )
            try:
                with urllib.request.urlopen(
                    f"{self.http_url}{model_path(SERVED_MODEL_NAME, 'ready')}", timeout=2
                ) as response:
                    if response.status == 200:
                        return time.monotonic() - start
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"MLServer not ready within {timeout:.0f}s; see {self.log_path or 'its output'}")

    def refused(self, timeout: float = READY_TIMEOUT_S) -> int:
        """Start a server that must not become ready (a bundle it must refuse, a registry it cannot
        reach) and return its exit status; raises if it became ready or did not exit in time."""
        self.start()
        try:
            self.wait_ready(timeout)
        except RuntimeError:
            return self.process.wait(timeout=30)
        finally:
            self.stop()
        raise AssertionError(f"{self.model_uri} was served; it should have been refused")

    def stop(self, timeout: float = 45.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` (the pod's grace period: drain, then the inference
        log's final commit)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if getattr(self, "_output", None):
            self._output.close()
        self._tmp.cleanup()

    def __enter__(self) -> Server:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_in_background(env: dict[str, str] | None = None) -> Server:
    """A ready server for a notebook: the registered model (trained first if there is none) on free
    ports of 127.0.0.1, its log in a temporary file (``server.log_path``), and the runtime settings in
    ``env``. Stopped by ``server.stop()``, or when the interpreter exits if the notebook never gets there."""
    config.configure_mlflow()
    log_path = Path(tempfile.mkdtemp(prefix="attrition-book-")) / "mlserver.log"
    server = Server(ensure_model(), ports=free_ports(), env=env, log_path=log_path)
    server.__enter__()  # starts MLServer and waits until the model answers (stops it if it never does)
    atexit.register(server.stop)
    return server


def curl_example(server: Server) -> str:
    body = json.dumps(v2_request([EXAMPLE_EMPLOYEE]), separators=(",", ":"))
    url = f"{server.http_url}{model_path(SERVED_MODEL_NAME, 'infer')}"
    return f"curl -s {url} -H 'Content-Type: application/json' -d {shlex.quote(body)}"


def inference_log_line() -> str:
    """Where the server logs what it answers (a Delta table), or how to switch the log on."""
    settings = RuntimeSettings()
    if not settings.inference_log_on:
        return f"inference log: off (set {INFERENCE_LOG_ENV} to a folder or abfss:// URL)"
    return f"inference log: {settings.inference_log} (a Delta table; attrition log compact keeps it small)"


def main(argv: list[str] | None = None) -> int:
    ports = default_ports()
    parser = argparse.ArgumentParser(prog="attrition-serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("ATTRITION_HOST", "127.0.0.1"))
    parser.add_argument("--http-port", type=int, default=ports["http"])
    parser.add_argument("--grpc-port", type=int, default=ports["grpc"])
    parser.add_argument("--metrics-port", type=int, default=ports["metrics"])
    args = parser.parse_args(argv)
    config.configure_mlflow()
    uri = ensure_model()
    server = Server(
        uri, args.host, {"http": args.http_port, "grpc": args.grpc_port, "metrics": args.metrics_port}
    )
    # SIGTERM (a supervisor, a test harness) ends the wait like Ctrl-C does; the server is stopped once,
    # in `finally`. Stopping it inside the handler would wait on the child while the interrupted
    # wait still holds Popen's lock, and hang.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server.start()
    try:
        seconds = server.wait_ready()
        print(
            f"\nready in {seconds:.1f}s: {SERVED_MODEL_NAME} ({uri}) on REST {server.http_url}, "
            f"gRPC {server.grpc_address}, metrics {server.metrics_url}\n{inference_log_line()}\n\n"
            f"{curl_example(server)}\n",
            flush=True,
        )
        return server.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
