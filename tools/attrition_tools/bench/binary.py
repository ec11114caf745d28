"""The benchmark's binary tensor rows: our server over REST with every input as binary tensor data and
the outputs asked for as binary (what tritonclient and kserve send by default), 1 and 1,000 rows at
concurrency 1, each request in turn with the same request as JSON (both meet the same load of a shared
machine). Bare MLServer answers binary bodies with a 500, so its JSON rows are the reference. Goals: a
1,000-row binary request at most half the bare server's 1,000-row JSON p50, and binary never slower
than JSON for us."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from attrition_runtime.binary import HEADER_LENGTH
from attrition_runtime.client import binary_request, v2_request
from attrition_tools.bench.measure import rest_sender, row, summarise
from attrition_tools.bench.schema import BenchSettings, Report

PROTOCOL = "rest-binary"
#: The 1,000-row binary p50 over bare MLServer's 1,000-row JSON p50.
LARGE_OVER_BARE_JSON = 0.5


def sender(session, url: str, rows: list[dict]) -> Callable[[], Awaitable[None]]:
    """POST one pre-built binary body; the answer must carry binary outputs."""
    body, headers = binary_request(rows, binary_outputs=True)

    async def send() -> None:
        async with session.post(url, data=body, headers=headers) as response:
            answer = await response.read()
            if response.status != 200 or HEADER_LENGTH not in response.headers:
                raise RuntimeError(f"POST {url} (binary): HTTP {response.status}: {answer[:500]!r}")

    return send


async def measure(
    session, url: str, settings: BenchSettings, rows_by_size: dict[int, list[dict]]
) -> list[dict]:
    """Our server's binary rows (1 and ``large_rows`` rows per request, concurrency 1), each with the
    p50 of the same JSON request sent in turn with it (``paired_json_p50_ms``)."""
    rows = []
    for n in (1, settings.large_rows):
        slow = n >= settings.large_rows
        timings = await alternating(
            {
                "binary": sender(session, url, rows_by_size[n]),
                "json": rest_sender(session, url, v2_request(rows_by_size[n]), None),
            },
            settings.slow_max_requests if slow else settings.max_requests,
            settings.max_seconds,
            min(settings.warmup, 3) if slow else settings.warmup,
        )
        rows.append(
            row("ours", PROTOCOL, n, 1, timings["binary"]) | {"paired_json_p50_ms": timings["json"]["p50_ms"]}
        )
    return rows


async def alternating(
    sends: dict[str, Callable[[], Awaitable[None]]], max_requests: int, max_seconds: float, warmup: int
) -> dict[str, dict]:
    """One request of each sender in turn, one at a time: on a shared machine both meet the same load,
    which cells measured one after the other do not (their ratio then says more about the load)."""
    for _ in range(warmup):
        for send in sends.values():
            await send()
    latencies: dict[str, list[float]] = {name: [] for name in sends}
    started = time.perf_counter()
    while len(latencies[next(iter(sends))]) < max_requests and time.perf_counter() < started + max_seconds:
        for name, send in sends.items():
            t = time.perf_counter()
            await send()
            latencies[name].append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    return {name: summarise(values, elapsed) for name, values in latencies.items()}


def _p50(report: Report, server: str, protocol: str, n: int) -> float | None:
    for r in report["rows"]:
        if (r["server"], r["protocol"], r["rows_per_request"], r["concurrency"]) == (server, protocol, n, 1):
            return r["p50_ms"]
    return None


def section(report: Report, settings: BenchSettings) -> dict:
    """Each size's binary p50 beside the JSON p50 sent in turn with it and bare MLServer's JSON p50 (its
    own run), their ratios, and the goals."""
    lines = []
    for n in (1, settings.large_rows):
        binary = next(r for r in report["rows"] if r["protocol"] == PROTOCOL and r["rows_per_request"] == n)
        ours, bare = binary["paired_json_p50_ms"], _p50(report, "bare", "rest", n)
        lines.append(
            {
                "rows_per_request": n,
                "binary_p50_ms": binary["p50_ms"],
                "json_p50_ms": ours,
                "bare_json_p50_ms": bare,
                "binary_over_json": _ratio(binary["p50_ms"], ours),
                "binary_over_bare_json": _ratio(binary["p50_ms"], bare),
            }
        )
    large = lines[-1]["binary_over_bare_json"]
    slower = [line["binary_over_json"] for line in lines]
    n = settings.large_rows
    goals = {
        f"{n}-row binary p50 / bare {n}-row JSON p50 <= {LARGE_OVER_BARE_JSON}": large is not None
        and large <= LARGE_OVER_BARE_JSON,
        "binary p50 / our JSON p50 <= 1 at every size": all(r is not None and r <= 1 for r in slower),
    }
    return {"rows": lines, "goals": goals}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def markdown(report: Report) -> str:
    """The binary section of latest.md."""
    part = report.get("binary")
    if not part:
        return ""
    lines = ["", "## Binary tensor data (REST) vs JSON, concurrency 1", ""]
    header = ["rows", "ours binary p50 ms", "ours JSON p50 ms (in turn)", "bare JSON p50 ms"]
    header += ["binary / our JSON", "binary / bare JSON"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in part["rows"]:
        cells = [r["rows_per_request"], r["binary_p50_ms"], r["json_p50_ms"], r["bare_json_p50_ms"]]
        cells += [r["binary_over_json"], r["binary_over_bare_json"]]
        lines.append("| " + " | ".join("-" if c is None else f"{c}" for c in cells) + " |")
    lines += ["", *(f"- {goal}: {'met' if met else '**not met**'}" for goal, met in part["goals"].items())]
    return "\n".join(lines) + "\n"
