"""The inference log's cost, measured in the benchmark's run: two of our servers up side by side, one
with the log off and one writing it to a local Delta table, 1-row REST at the top concurrency in
alternating rounds (so both see the same machine load); and the writer alone, in process, committing
as fast as it can, for the rows per second it sustains."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from attrition.inference_log.writer import Counters, LogWriter, request_rows
from attrition_runtime.client import v2_request
from attrition_runtime.settings import INFERENCE_LOG_ENV
from attrition_runtime.wire import model_path
from attrition_tools.bench.measure import row, summarise
from attrition_tools.bench.schema import BenchSettings
from attrition_tools.serve import SERVED_MODEL_NAME, Server, free_ports

ROUNDS = 4
#: Rows the writer alone commits: 50,000 one-row requests, about ten seconds of the server's peak.
WRITER_ROWS = 50_000


async def _round(send, latencies: list[float], concurrency: int, seconds: float, budget: int) -> float:
    """One closed-loop round on one side; its wall time."""
    started = time.perf_counter()
    deadline, stop_at = started + seconds, len(latencies) + budget

    async def client() -> None:
        while len(latencies) < stop_at and time.perf_counter() < deadline:
            t = time.perf_counter()
            await send()
            latencies.append(time.perf_counter() - t)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - started


async def _rounds(urls: dict[str, str], body: dict, settings: BenchSettings, concurrency: int) -> dict:
    """Latencies per side, over ``ROUNDS`` alternating rounds of ``max_seconds / ROUNDS`` each."""
    import aiohttp

    from attrition_tools.bench.measure import rest_sender

    latencies: dict[str, list[float]] = {side: [] for side in urls}
    elapsed = dict.fromkeys(urls, 0.0)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        senders = {side: rest_sender(session, url, body, "probability") for side, url in urls.items()}
        for send in senders.values():
            for _ in range(settings.warmup):
                await send()
        for _ in range(ROUNDS):
            for side, send in senders.items():
                elapsed[side] += await _round(
                    send,
                    latencies[side],
                    concurrency,
                    settings.max_seconds / ROUNDS,
                    settings.max_requests // ROUNDS,
                )
    return {side: summarise(latencies[side], elapsed[side]) for side in urls}


def servers_on_and_off(uri: str, settings: BenchSettings, example: list[dict], tmp: Path) -> dict:
    """1-row REST at the top concurrency, log off vs log on, in the same run."""
    concurrency = max(settings.concurrency)
    sides = {
        "log off": Server(uri, ports=free_ports(), env={INFERENCE_LOG_ENV: "off"}, log_path=tmp / "off.log"),
        "log on": Server(
            uri, ports=free_ports(), env={INFERENCE_LOG_ENV: str(tmp / "log")}, log_path=tmp / "on.log"
        ),
    }
    try:
        for server in sides.values():
            server.start()
        for server in sides.values():
            server.wait_ready()
        urls = {side: s.http_url + model_path(SERVED_MODEL_NAME, "infer") for side, s in sides.items()}
        results = asyncio.run(_rounds(urls, v2_request(example, {"drift": False}), settings, concurrency))
    finally:
        for server in sides.values():
            server.stop()
    return {side: row(f"ours, {side}", "rest", 1, concurrency, result) for side, result in results.items()}


def writer_rows_per_s(rows: int, tmp: Path) -> dict:
    """The writer alone: ``rows`` one-row requests' rows (built beforehand: the request path builds
    them, not the writer) put at once, then committed by the writer thread; rows per second from the
    first put to the last commit."""
    counts = {"written": 0, "dropped": 0}
    counters = Counters(
        written=lambda n: counts.__setitem__("written", counts["written"] + n),
        dropped=lambda n: counts.__setitem__("dropped", counts["dropped"] + n),
    )
    chunks = [
        request_rows(f"r{i}", [None], "m", "1", "open", [0.5], ["No"], [0.1], [False], None)
        for i in range(rows)
    ]
    writer = LogWriter(str(tmp / "writer"), commit_s=1.0, capacity_rows=rows, counters=counters).start()
    started = time.perf_counter()
    for chunk in chunks:
        writer.put(chunk, 1)
    writer.close(timeout_s=120)
    elapsed = time.perf_counter() - started
    return {"rows": rows, "written": counts["written"], "dropped": counts["dropped"],
            "rows_per_s": round(counts["written"] / elapsed, 1)}  # fmt: skip


def measure(uri: str, settings: BenchSettings, example: list[dict], progress=print) -> dict:
    with tempfile.TemporaryDirectory(prefix="attrition-bench-log-") as tmp:
        progress("bench: the inference log: our server with the log off and on, side by side ...")
        rows = servers_on_and_off(uri, settings, example, Path(tmp))
        progress("bench: the inference log's writer alone ...")
        writer = writer_rows_per_s(WRITER_ROWS, Path(tmp))
    return {"rows": list(rows.values()), "writer": writer}
