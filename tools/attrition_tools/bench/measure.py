"""The benchmark (``make bench``): what the full answer costs next to a bare MLServer and in-process scoring.

One run on 127.0.0.1, servers one after the other (never two at once, always stopped):

1. in-process: ``validate_features`` + ``TrustBundle.score`` on 1 and 1,000 rows, and attributions on 1 row;
2. *bare*: stock ``mlserver_mlflow.MLflowRuntime`` serving the bundle's classifier alone, exported as a
   plain MLflow sklearn model, with our server settings (settings.json, model-settings.json batching);
3. *ours*: :class:`attrition_runtime.serve.Server` serving the bundle.

For each server, over REST (aiohttp, raw V2 JSON) and gRPC (``tritonclient.grpc.aio``): p50/p99 latency
and requests/s for 1- and 100-row requests at concurrency 1 and 8, and 1,000-row requests at
concurrency 1, each cell bounded by a request count and a time, whichever comes first; for ours also
``explain: true``; start to ready; peak RSS of the main process, each worker and their sum. Machines
are shared and noisy: only the ratios of one run, measured side by side, count.

Output: a table on stdout, ``latest.json`` and ``latest.md`` in ``book/benchmark/`` (``--quick``, or
``ATTRITION_BENCH_QUICK=1``, is a smoke run with a few requests per cell, written to a temp folder
unless ``--out`` is given). The JSON (read by the book's performance chapter; ``schema`` is bumped
on any incompatible change)::

    {"schema": 1, "date", "duration_s", "quick",
     "machine": {"cpu", "cores", "python", "platform", "loadavg_start", "loadavg_end", "versions": {..}},
     "settings": {"max_requests", "max_seconds", "warmup", "concurrency", "rows", "large_rows",
                  "server": <settings.json>, "model": {"uri", "family", "version"}, "clients": {..}},
     "rows": [{"server": "ours"|"bare"|"in-process", "protocol": "rest"|"grpc"|null,
               "rows_per_request", "concurrency", "p50_ms", "p99_ms", "mean_ms", "rps", "n"}],
     "explain": {"server": <row, protocol rest, explain true>, "in_process": <row>},
     "startup": {"ours": {"ready_s"}, "bare": {"ready_s"}},
     "memory": {"ours"|"bare": {"peak_total_mib", "peak_main_mib", "peak_worker_mib": [..], "workers"}},
     "ratios": {"ours_over_bare": [{"protocol", "rows_per_request", "concurrency", "p50", "p99", "rps"}],
                "ours_over_in_process": [{"protocol", "rows_per_request", "p50"}],
                "large_over_small": [{"server", "protocol", "p50"}],
                "startup_ours_over_bare", "rss_ours_over_bare"},
     "targets": [{"name", "op": "<="|">=", "target", "unit", "measured", "met"}]}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import math
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from attrition import bundle as bundle_module
from attrition import config, data, registry
from attrition.schema import validate_features

# Not contract.py nor runtime.py: they import mlserver, whose gRPC stubs clash with tritonclient's.
from attrition_runtime.client import EXAMPLE_EMPLOYEE, EXPLANATION_OUTPUT, triton_inputs, v2_request
from attrition_runtime.options import MODEL_ALIAS_ENV, MODEL_URI_ENV
from attrition_runtime.serve import (
    MODEL_SETTINGS,
    SERVED_MODEL_NAME,
    SERVER_DIR,
    Server,
    ensure_model,
    free_ports,
    mlserver_command,
)

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "book" / "benchmark"
QUICK_ENV = "ATTRITION_BENCH_QUICK"
SCHEMA = 1
PROTOCOLS = ("rest", "grpc")
BARE_IMPLEMENTATION = "mlserver_mlflow.MLflowRuntime"
MIB = 1024 * 1024


@dataclass(frozen=True)
class BenchSettings:
    """How much to measure: every cell stops at ``max_requests`` or ``max_seconds``, whichever first."""

    quick: bool
    max_requests: int
    max_seconds: float
    warmup: int
    concurrency: tuple[int, ...] = (1, 8)
    rows: tuple[int, ...] = (1, 100)
    large_rows: int = 1000
    #: Explanations and 1,000-row requests are slow: their own, smaller count bound.
    slow_max_requests: int = 100


#: <= 8 s per cell: 21 server cells + in-process + two start-ups stay well under 5 minutes on 2 cores.
FULL = BenchSettings(quick=False, max_requests=4000, max_seconds=8.0, warmup=20)
QUICK = BenchSettings(quick=True, max_requests=15, max_seconds=1.0, warmup=2, slow_max_requests=3)


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


async def load(
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
    """POST a pre-serialised V2 JSON body. MLServer has no binary tensor extension over REST: JSON it is."""
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
    model_settings = copy.deepcopy(MODEL_SETTINGS)
    model_settings["implementation"] = BARE_IMPLEMENTATION
    model_settings["parameters"] = {"uri": str(model_dir)}
    (folder / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    return folder


@dataclass
class Workload:
    """The request rows: the example employee and the first rows of the data set."""

    rows: dict[int, list[dict]]

    @classmethod
    def build(cls, settings: BenchSettings) -> Workload:
        features, _ = data.load()
        records = features.to_dict(orient="records")
        sizes = [n for n in (*settings.rows, settings.large_rows) if n > 1]
        out = {1: [dict(EXAMPLE_EMPLOYEE)]}
        out.update({n: records[:n] for n in sizes})
        return cls(out)


async def measure_server(
    server: Server, name: str, settings: BenchSettings, workload: Workload, expect: str | None
) -> tuple[list[dict], dict | None]:
    """Every cell for one running server, REST then gRPC; the explanation row for ours."""
    import aiohttp
    from tritonclient.grpc import aio as grpc_client

    url = f"{server.http_url}/v2/models/{SERVED_MODEL_NAME}/infer"
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
                    result = await load(
                        send,
                        concurrency,
                        settings.slow_max_requests if slow else settings.max_requests,
                        settings.max_seconds,
                        min(settings.warmup, 3) if slow else settings.warmup,
                    )
                    rows.append(row(name, protocol, n, concurrency, result))
            if name == "ours":
                body = v2_request(workload.rows[1], {"explain": True})
                send = rest_sender(session, url, body, EXPLANATION_OUTPUT)
                result = await load(
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


def in_process(trust_bundle, settings: BenchSettings, workload: Workload) -> tuple[list[dict], dict]:
    """Validation + scoring on 1 and 1,000 rows, and 1-row attributions, without any server."""
    out = []
    for n in (1, settings.large_rows):
        frame = pd.DataFrame(workload.rows[n])
        result = time_calls(
            lambda frame=frame: trust_bundle.score(validate_features(frame)),
            settings.max_requests,
            settings.max_seconds / 2,
            settings.warmup,
        )
        out.append(row("in-process", None, n, 1, result))
    features = validate_features(pd.DataFrame(workload.rows[1]))
    result = time_calls(
        lambda: trust_bundle.explain(features, "attributions"),
        settings.slow_max_requests,
        settings.max_seconds / 2,
        min(settings.warmup, 3),
    )
    return out, row("in-process", None, 1, 1, result) | {"explain": True}


# --- the report -----------------------------------------------------------------------------------


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


def _find(rows: list[dict], server: str, protocol: str | None, n: int, concurrency: int) -> dict | None:
    for r in rows:
        key = (r["server"], r["protocol"], r["rows_per_request"], r["concurrency"])
        if key == (server, protocol, n, concurrency):
            return r
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or not math.isfinite(a) or not math.isfinite(b):
        return None
    return round(a / b, 3)


def ratios(report: dict, settings: BenchSettings) -> dict:
    rows = report["rows"]
    ours_bare = []
    for r in rows:
        if r["server"] != "ours":
            continue
        bare = _find(rows, "bare", r["protocol"], r["rows_per_request"], r["concurrency"])
        if bare:
            ours_bare.append(
                {
                    "protocol": r["protocol"],
                    "rows_per_request": r["rows_per_request"],
                    "concurrency": r["concurrency"],
                    **{k: _ratio(r[f"{k}_ms"], bare[f"{k}_ms"]) for k in ("p50", "p99")},
                    "rps": _ratio(r["rps"], bare["rps"]),
                }
            )
    ours_in_process = []
    for n in (1, settings.large_rows):
        local = _find(rows, "in-process", None, n, 1)
        for protocol in PROTOCOLS:
            ours = _find(rows, "ours", protocol, n, 1)
            if ours and local:
                ours_in_process.append(
                    {
                        "protocol": protocol,
                        "rows_per_request": n,
                        "p50": _ratio(ours["p50_ms"], local["p50_ms"]),
                    }
                )
    large_small = []
    for server in ("ours", "bare", "in-process"):
        for protocol in PROTOCOLS if server != "in-process" else (None,):
            large = _find(rows, server, protocol, settings.large_rows, 1)
            small = _find(rows, server, protocol, 1, 1)
            if large and small:
                large_small.append(
                    {"server": server, "protocol": protocol, "p50": _ratio(large["p50_ms"], small["p50_ms"])}
                )
    memory = report["memory"]
    return {
        "ours_over_bare": ours_bare,
        "ours_over_in_process": ours_in_process,
        "large_over_small": large_small,
        "startup_ours_over_bare": _ratio(
            report["startup"]["ours"]["ready_s"], report["startup"]["bare"]["ready_s"]
        ),
        "rss_ours_over_bare": _ratio(memory["ours"]["peak_total_mib"], memory["bare"]["peak_total_mib"]),
    }


def targets(report: dict, settings: BenchSettings) -> list[dict]:
    """The issue's targets, reported (never asserted)."""
    rows, r = report["rows"], report["ratios"]

    def cell(kind: str, **key) -> float | None:
        for entry in r[kind]:
            if all(entry[k] == v for k, v in key.items() if k != "value"):
                return entry[key["value"]]
        return None

    local = _find(rows, "in-process", None, 1, 1)
    memory = report["memory"]["ours"]
    items = [
        (
            "single-row REST p50, ours / bare",
            "<=",
            1.5,
            "x bare",
            cell("ours_over_bare", protocol="rest", rows_per_request=1, concurrency=1, value="p50"),
        ),
    ]
    top = max(settings.concurrency)
    for protocol in PROTOCOLS:
        for n in settings.rows:
            items.append(
                (
                    f"{protocol} {n}-row throughput at concurrency {top}, ours / bare",
                    ">=",
                    0.8,
                    "x bare",
                    cell(
                        "ours_over_bare", protocol=protocol, rows_per_request=n, concurrency=top, value="rps"
                    ),
                )
            )
    items.append(("single-row in-process bundle p50", "<=", 10.0, "ms", local and local["p50_ms"]))
    for protocol in PROTOCOLS:
        items.append(
            (
                f"{protocol} {settings.large_rows}-row request p50 / 1-row p50, ours",
                "<=",
                10.0,
                "x",
                cell("large_over_small", server="ours", protocol=protocol, value="p50"),
            )
        )
    explain = report["explain"]["server"]
    items += [
        ("attribution explanation p50 (REST, 1 row)", "<=", 50.0, "ms", explain and explain["p50_ms"]),
        ("start to ready, ours", "<=", 20.0, "s", report["startup"]["ours"]["ready_s"]),
        # Per worker process; MLServer's main process and the tree's total are in "memory".
        ("peak RSS per worker, ours", "<=", 1024.0, "MiB", max(memory["peak_worker_mib"], default=None)),
    ]
    out = []
    for name, op, target, unit, measured in items:
        met = None if measured is None else (measured <= target if op == "<=" else measured >= target)
        out.append({"name": name, "op": op, "target": target, "unit": unit, "measured": measured, "met": met})
    return out


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], lines: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(v) for v in line) + " |" for line in lines]
    return out


def markdown(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        f"# Benchmark{' (quick smoke run)' if report['quick'] else ''}: {report['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {versions}; "
        f"load average {m['loadavg_start']} at the start, {m['loadavg_end']} at the end.",
        f"Model: `{s['model']['uri']}` (version {s['model']['version']}, {s['model']['family']}); "
        f"server settings {json.dumps(s['server'])}; clients on the same machine: {s['clients']['rest']} "
        f"and {s['clients']['grpc']}.",
        f"Run time {report['duration_s']:.0f} s. Each cell: up to {s['max_requests']} requests or "
        f"{s['max_seconds']} s after {s['warmup']} warm-up requests (explanations and "
        f"{s['large_rows']}-row requests: up to {s['slow_max_requests']}).",
        "",
        "**Only the ratios count**: they were measured side by side in this one run on 127.0.0.1 "
        "(servers one after the other). Absolute numbers depend on the machine and on whatever else ran.",
        "",
        "## Ours (full answer) vs bare MLServer (classifier only)",
        "",
    ]
    table = []
    for r in report["ratios"]["ours_over_bare"]:
        key = (r["protocol"], r["rows_per_request"], r["concurrency"])
        ours = _find(report["rows"], "ours", *key)
        bare = _find(report["rows"], "bare", *key)
        table.append(
            [
                *key,
                bare["p50_ms"],
                ours["p50_ms"],
                r["p50"],
                bare["p99_ms"],
                ours["p99_ms"],
                r["p99"],
                bare["rps"],
                ours["rps"],
                r["rps"],
            ]
        )
    lines += _table(
        [
            "protocol",
            "rows",
            "concurrency",
            "bare p50 ms",
            "ours p50 ms",
            "p50 ratio",
            "bare p99 ms",
            "ours p99 ms",
            "p99 ratio",
            "bare req/s",
            "ours req/s",
            "req/s ratio",
        ],
        table,
    )
    lines += ["", "## Ours vs in-process (validation + `TrustBundle.score`)", ""]
    table = []
    for r in report["ratios"]["ours_over_in_process"]:
        local = _find(report["rows"], "in-process", None, r["rows_per_request"], 1)
        ours = _find(report["rows"], "ours", r["protocol"], r["rows_per_request"], 1)
        table.append([r["protocol"], r["rows_per_request"], local["p50_ms"], ours["p50_ms"], r["p50"]])
    lines += _table(["protocol", "rows", "in-process p50 ms", "ours p50 ms", "ratio"], table)
    lines += ["", "## Large over small requests (p50 of 1,000 rows / p50 of 1 row, concurrency 1)", ""]
    lines += _table(
        ["server", "protocol", "ratio"],
        [[r["server"], r["protocol"], r["p50"]] for r in report["ratios"]["large_over_small"]],
    )
    e, st, mem = report["explain"], report["startup"], report["memory"]
    lines += ["", "## Explanations, start-up, memory", ""]
    lines += _table(
        ["measure", "ours", "bare", "in-process"],
        [
            ["explain: true p50 ms (1 row)", e["server"]["p50_ms"], "-", e["in_process"]["p50_ms"]],
            ["start to ready s", st["ours"]["ready_s"], st["bare"]["ready_s"], "-"],
            ["peak RSS, process tree MiB", mem["ours"]["peak_total_mib"], mem["bare"]["peak_total_mib"], "-"],
            ["peak RSS, main process MiB", mem["ours"]["peak_main_mib"], mem["bare"]["peak_main_mib"], "-"],
            [
                "peak RSS, largest worker MiB",
                max(mem["ours"]["peak_worker_mib"], default=None),
                max(mem["bare"]["peak_worker_mib"], default=None),
                "-",
            ],
        ],
    )
    lines += ["", "## Targets (reported, not asserted)", ""]
    lines += _table(
        ["target", "goal", "measured", "met"],
        [
            [
                t["name"],
                f"{t['op']} {t['target']:g} {t['unit']}",
                t["measured"],
                {True: "yes", False: "**no**", None: "-"}[t["met"]],
            ]
            for t in report["targets"]
        ],
    )
    return "\n".join(lines) + "\n"


# --- the run --------------------------------------------------------------------------------------


def model_uri(settings: BenchSettings, progress=print) -> str:
    """``ensure_model()``; a quick run with nothing registered trains a quick bundle in a scratch store
    instead of a full search in the project's own."""
    alias = os.environ.get(MODEL_ALIAS_ENV, config.PRODUCTION)
    if settings.quick and not os.environ.get(MODEL_URI_ENV) and registry.alias_version(alias) is None:
        scratch = tempfile.mkdtemp(prefix="attrition-bench-mlflow-")
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch}/mlflow.db"
        os.environ["ATTRITION_QUICK"] = "1"
        config.configure_mlflow()
    return ensure_model(progress)


def registered_version(uri: str) -> str | None:
    """The registry version behind ``models:/<name>@<alias>`` (None for any other URI)."""
    alias = os.environ.get(MODEL_ALIAS_ENV, config.PRODUCTION)
    return registry.alias_version(alias) if uri == config.model_uri(alias) else None


def run(settings: BenchSettings, out_dir: Path, progress=print) -> dict:
    """The whole benchmark; writes ``latest.json`` and ``latest.md`` into ``out_dir``."""
    begun = time.monotonic()
    report: dict = {
        "schema": SCHEMA,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": settings.quick,
        "machine": machine(),
    }
    config.configure_mlflow()
    uri = model_uri(settings, progress)
    progress(f"bench: model {uri}; loading the bundle in-process ...")
    trust_bundle = bundle_module.load(uri)
    server_settings = json.loads((SERVER_DIR / "settings.json").read_text())
    workers = max(int(server_settings.get("parallel_workers", 1)), 1)
    report["settings"] = {
        **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()},
        "server": server_settings,
        "model": {
            "uri": uri,
            "family": trust_bundle.info.model_family,
            "version": registered_version(uri),
        },
        "clients": {
            "rest": f"aiohttp {version('aiohttp')} (JSON)",
            "grpc": f"tritonclient {version('tritonclient')} (grpc.aio)",
        },
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    workload = Workload.build(settings)

    progress("bench: in-process scoring ...")
    local_rows, local_explain = in_process(trust_bundle, settings, workload)

    with tempfile.TemporaryDirectory(prefix="attrition-bench-") as tmp:
        tmp = Path(tmp)
        model_dir = export_classifier(trust_bundle, tmp / "classifier")
        del trust_bundle
        progress("bench: bare MLServer (stock MLflowRuntime, classifier only) ...")
        # Server's own command with the bare settings folder instead of SERVER_DIR.
        bare_folder = bare_settings_folder(model_dir, tmp / "bare")
        bare = run_server(
            Server("", ports=free_ports(), log_path=tmp / "bare.log", command=mlserver_command(bare_folder)),
            "bare", settings, workload, None, workers,
        )  # fmt: skip
        progress("bench: our server (bundle: probability, outliers, drift, explanations) ...")
        ours = run_server(
            Server(uri, ports=free_ports(), log_path=tmp / "ours.log"),
            "ours", settings, workload, bundle_module.OUTPUTS[0], workers,  # probability
        )  # fmt: skip

    report["rows"] = local_rows + bare["rows"] + ours["rows"]
    report["explain"] = {"server": ours["explain"], "in_process": local_explain}
    report["startup"] = {"ours": {"ready_s": ours["ready_s"]}, "bare": {"ready_s": bare["ready_s"]}}
    report["memory"] = {"ours": ours["memory"], "bare": bare["memory"]}
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["ratios"] = ratios(report, settings)
    report["targets"] = targets(report, settings)
    report["duration_s"] = round(time.monotonic() - begun, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "latest.md").write_text(markdown(report))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attrition-bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get(QUICK_ENV) == "1",
        help=f"smoke run: a few requests per cell (also {QUICK_ENV}=1)",
    )
    parser.add_argument("--out", type=Path, help=f"output folder (default {OUT_DIR}; quick: a temp folder)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    out = args.out or (Path(tempfile.gettempdir()) / "attrition-bench-quick" if args.quick else OUT_DIR)
    report = run(settings, out)
    print("\n" + markdown(report))
    print(f"written: {out / 'latest.json'}, {out / 'latest.md'} in {report['duration_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
