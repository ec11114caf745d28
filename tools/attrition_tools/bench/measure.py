"""Measuring: closed-loop load on a running server (REST with aiohttp, gRPC with tritonclient's aio
client), in-process timing, the process tree's peak RSS, and the two servers (bare and ours)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from attrition import bundle as bundle_module
from attrition.contract.outputs import EXPLANATION
from attrition.contract.schema import encode, frame_codes
from attrition.training import data

# Not contract.py nor runtime.py: they import mlserver, whose gRPC stubs clash with tritonclient's.
from attrition_runtime.client import EXAMPLE_EMPLOYEE, columns, triton_inputs, v2_request
from attrition_runtime.wire import model_path
from attrition_tools.bench.schema import PROTOCOLS, BenchSettings, Row
from attrition_tools.serve import SERVED_MODEL_NAME, SERVER_DIR, Server

BARE_IMPLEMENTATION = "mlserver_mlflow.MLflowRuntime"
MIB = 1024 * 1024


# --- measuring ------------------------------------------------------------------------------------


def summarise(latencies: list[float], elapsed: float) -> dict:
    ms = np.asarray(latencies) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "rps": round(len(ms) / elapsed, 2),
        "n": len(ms),
    }


async def closed_loop(
    send: Callable[[], Awaitable[None]], concurrency: int, max_requests: int, max_seconds: float, warmup: int
) -> dict:
    """``concurrency`` closed-loop clients sending until the count or the time bound; latency per request.

    Hand-written rather than a load tool (locust, wrk, ghz): one async client for both protocols and
    both servers keeps the client cost identical on each side, and needs nothing beyond the project's
    own dependencies.
    """
    for _ in range(warmup):
        await send()
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + max_seconds

    async def client() -> None:
        while len(latencies) < max_requests and time.perf_counter() < deadline:
            t = time.perf_counter()
            await send()
            latencies.append(time.perf_counter() - t)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return summarise(latencies, time.perf_counter() - started)


def time_calls(call: Callable[[], object], max_requests: int, max_seconds: float, warmup: int) -> dict:
    for _ in range(warmup):
        call()
    latencies: list[float] = []
    started = time.perf_counter()
    while len(latencies) < max_requests and time.perf_counter() - started < max_seconds:
        t = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t)
    return summarise(latencies, time.perf_counter() - started)


class RssSampler:
    """Peak resident memory of MLServer's main process, of each child (workers) and of their sum,
    sampled in a thread (summed RSS counts shared pages twice: an upper bound)."""

    def __init__(self, pid: int, interval: float = 0.1):
        import psutil  # a dependency of ipython (dev extra); only the benchmark needs it

        self._root = psutil.Process(pid)
        self._errors = (psutil.NoSuchProcess, psutil.AccessDenied)
        self.interval = interval
        self.peak_total = 0
        self.peaks: dict[int, int] = {}  # pid -> peak RSS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        try:
            processes = [self._root, *self._root.children(recursive=True)]
        except self._errors:
            return
        total = 0
        for process in processes:
            with contextlib.suppress(self._errors):
                rss = process.memory_info().rss
                total += rss
                self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), rss)
        self.peak_total = max(self.peak_total, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def report(self, workers: int) -> dict:
        children = sorted((rss for pid, rss in self.peaks.items() if pid != self._root.pid), reverse=True)
        return {
            "peak_total_mib": round(self.peak_total / MIB, 1),
            "peak_main_mib": round(self.peaks.get(self._root.pid, 0) / MIB, 1),
            # The largest children are the workers (others: multiprocessing's resource tracker).
            "peak_worker_mib": [round(rss / MIB, 1) for rss in children[:workers]],
            "workers": workers,
        }


# --- clients --------------------------------------------------------------------------------------


def rest_sender(session, url: str, body: dict, expect: str | None) -> Callable[[], Awaitable[None]]:
    """POST a pre-serialised V2 JSON body (binary tensors: attrition_tools.bench.binary)."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    checked = False

    async def send() -> None:
        nonlocal checked
        async with session.post(url, data=payload, headers=headers) as response:
            text = await response.read()
            if response.status != 200:
                raise RuntimeError(f"POST {url}: HTTP {response.status}: {text[:500]!r}")
        if not checked:  # once per cell: the answer carries what was asked for
            names = [o["name"] for o in json.loads(text)["outputs"]]
            if not names or (expect and expect not in names):
                raise RuntimeError(f"POST {url}: no output {expect!r} in {names}")
            checked = True

    return send


def grpc_sender(client, rows: list[dict], expect: str | None) -> Callable[[], Awaitable[None]]:
    from tritonclient import grpc as triton_grpc

    inputs = triton_inputs(rows, triton_grpc)
    checked = False

    async def send() -> None:
        nonlocal checked
        result = await client.infer(SERVED_MODEL_NAME, inputs)
        if not checked:
            names = [o.name for o in result.get_response().outputs]
            if not names or (expect and expect not in names):
                raise RuntimeError(f"gRPC infer: no output {expect!r} in {names}")
            checked = True

    return send


# --- servers --------------------------------------------------------------------------------------


def export_classifier(trust_bundle, folder: Path) -> Path:
    """The bundle's classifier alone as a plain MLflow sklearn model, as anyone would serve it.

    cloudpickle: the bundle itself stores the classifier with joblib, so both servers deserialise the
    same way and start-up compares servers, not formats. (mlflow 3.17's default, skops, also loads
    this pipeline: save_model records the pipeline's non-default trusted types in MLmodel.)
    ``predict_proba``: the bare answer is the probability, like ours.
    """
    import mlflow.sklearn
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    # The stock runtime needs output metadata too (it fails to load with inputs only).
    outputs = Schema([TensorSpec(np.dtype("float64"), (-1, 2))])
    mlflow.sklearn.save_model(
        trust_bundle.classifier,
        str(folder),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        signature=ModelSignature(inputs=bundle_module.signature().inputs, outputs=outputs),
        pyfunc_predict_fn="predict_proba",
    )
    return folder


def bare_settings_folder(model_dir: Path, folder: Path) -> Path:
    """settings.json as ours; model-settings.json as ours but the stock runtime and the exported model."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text((SERVER_DIR / "settings.json").read_text())
    model_settings = json.loads((SERVER_DIR / "model-settings.json").read_text())
    model_settings["implementation"] = BARE_IMPLEMENTATION
    model_settings["parameters"] = {"uri": str(model_dir)}
    (folder / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    return folder


@dataclass
class Workload:
    """The request rows: the example employee and the first rows of the data set."""

    rows: dict[int, list[dict]]
    codes: np.ndarray
    DRIFT_BATCHES = 400

    @classmethod
    def build(cls, settings: BenchSettings) -> Workload:
        features, _ = data.load()
        records = features.to_dict(orient="records")
        sizes = [n for n in (*settings.rows, settings.large_rows) if n > 1]
        out = {1: [dict(EXAMPLE_EMPLOYEE)]}
        out.update({n: records[:n] for n in sizes})
        return cls(out, frame_codes(features))

    def drift_batches(self, n: int) -> list[np.ndarray]:
        """Distinct random batches of the data set (a repeated batch would flatter any cache)."""
        rng = np.random.default_rng(0)
        return [self.codes[rng.choice(len(self.codes), n, replace=False)] for _ in range(self.DRIFT_BATCHES)]


async def measure_server(
    server: Server, name: str, settings: BenchSettings, workload: Workload, expect: str | None
) -> tuple[list[dict], dict | None]:
    """Every cell for one running server, REST then gRPC; the explanation row for ours."""
    import aiohttp
    from tritonclient.grpc import aio as grpc_client

    from attrition_tools.bench import binary  # it builds on this module

    url = f"{server.http_url}{model_path(SERVED_MODEL_NAME, 'infer')}"
    cells = [(n, c) for n in settings.rows for c in settings.concurrency] + [(settings.large_rows, 1)]
    rows, explain = [], None
    connector = aiohttp.TCPConnector(limit=max(settings.concurrency))
    async with aiohttp.ClientSession(connector=connector) as session:
        client = grpc_client.InferenceServerClient(server.grpc_address)
        try:
            for protocol in PROTOCOLS:
                for n, concurrency in cells:
                    if protocol == "rest":
                        send = rest_sender(session, url, v2_request(workload.rows[n]), expect)
                    else:
                        send = grpc_sender(client, workload.rows[n], expect)
                    slow = n >= settings.large_rows
                    result = await closed_loop(
                        send,
                        concurrency,
                        settings.slow_max_requests if slow else settings.max_requests,
                        settings.max_seconds,
                        min(settings.warmup, 3) if slow else settings.warmup,
                    )
                    rows.append(row(name, protocol, n, concurrency, result))
            if name == "ours":  # bare MLServer answers binary tensors with a 500
                rows += await binary.measure(session, url, settings, workload.rows)
                body = v2_request(workload.rows[1], {"explain": True})
                send = rest_sender(session, url, body, EXPLANATION.name)
                result = await closed_loop(
                    send, 1, settings.slow_max_requests, settings.max_seconds, min(settings.warmup, 3)
                )
                explain = row(name, "rest", 1, 1, result) | {"explain": True}
        finally:
            await client.close()
    return rows, explain


def row(server: str, protocol: str | None, rows_per_request: int, concurrency: int, result: dict) -> dict:
    return {
        "server": server,
        "protocol": protocol,
        "rows_per_request": rows_per_request,
        "concurrency": concurrency,
        **result,
    }


def run_server(
    server: Server, name: str, settings: BenchSettings, workload: Workload, expect: str | None, workers: int
) -> dict:
    """Start, wait for ready, measure, stop (always); start-up and peak RSS come with the rows."""
    started = time.monotonic()
    server.start()
    try:
        with RssSampler(server.process.pid) as memory:
            server.wait_ready()
            ready_s = time.monotonic() - started
            rows, explain = asyncio.run(measure_server(server, name, settings, workload, expect))
            memory.sample()
    except BaseException:
        if server.log_path and server.log_path.exists():
            print(server.log_path.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        server.stop()
    return {
        "rows": rows,
        "explain": explain,
        "ready_s": round(ready_s, 2),
        "memory": memory.report(workers),
    }


def in_process(trust_bundle, settings: BenchSettings, workload: Workload) -> tuple[list[Row], Row, Row]:
    """Without any server: validation + scoring on 1 and 1,000 rows (from the columns a V2 request
    decodes to), the batch drift test on distinct random batches, and 1-row attributions."""
    out = []
    for n in (1, settings.large_rows):
        request = columns(workload.rows[n])
        result = time_calls(
            lambda request=request: trust_bundle.score_codes(encode(request)),
            settings.max_requests,
            settings.max_seconds / 2,
            settings.warmup,
        )
        out.append(row("in-process", None, n, 1, result))
    batches = iter(workload.drift_batches(settings.drift_rows))
    result = time_calls(
        lambda: trust_bundle.drift_codes(next(batches)),
        min(settings.max_requests, Workload.DRIFT_BATCHES - settings.warmup),
        settings.max_seconds / 2,
        settings.warmup,
    )
    drift = row("in-process", None, settings.drift_rows, 1, result)
    codes = encode(columns(workload.rows[1]))
    result = time_calls(
        lambda: trust_bundle.explain_codes(codes),
        settings.slow_max_requests,
        settings.max_seconds / 2,
        min(settings.warmup, 3),
    )
    return out, drift, row("in-process", None, 1, 1, result)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            d: version(d)
            for d in ("mlserver", "mlserver-mlflow", "mlflow", "scikit-learn", "numpy", "pandas")
        },
    }
