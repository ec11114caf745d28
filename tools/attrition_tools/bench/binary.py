"""The benchmark's binary tensor rows: our server over REST with every input as binary tensor data and
the outputs asked for as binary (what tritonclient and kserve send by default), 1 and 1,000 rows at
concurrency 1, beside the JSON rows of the same run. Bare MLServer answers binary bodies with a 500, so
its JSON rows are the reference: goals, a 1,000-row binary request at most half the bare server's
1,000-row JSON p50, and binary never slower than JSON for us."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from attrition_runtime.binary import HEADER_LENGTH
from attrition_runtime.client import binary_request
from attrition_tools.bench.measure import closed_loop, row
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
    """Our server's binary rows (1 and ``large_rows`` rows per request, concurrency 1)."""
    rows = []
    for n in (1, settings.large_rows):
        slow = n >= settings.large_rows
        result = await closed_loop(
            sender(session, url, rows_by_size[n]),
            1,
            settings.slow_max_requests if slow else settings.max_requests,
            settings.max_seconds,
            min(settings.warmup, 3) if slow else settings.warmup,
        )
        rows.append(row("ours", PROTOCOL, n, 1, result))
    return rows


def _p50(report: Report, server: str, protocol: str, n: int) -> float | None:
    for r in report["rows"]:
        if (r["server"], r["protocol"], r["rows_per_request"], r["concurrency"]) == (server, protocol, n, 1):
            return r["p50_ms"]
    return None


def section(report: Report, settings: BenchSettings) -> dict:
    """Each size's binary p50 beside our JSON p50 and bare MLServer's JSON p50, their ratios, the goals."""
    lines = []
    for n in (1, settings.large_rows):
        binary, ours, bare = (
            _p50(report, s, p, n) for s, p in (("ours", PROTOCOL), ("ours", "rest"), ("bare", "rest"))
        )
        ratio = lambda a, b: round(a / b, 3) if a and b else None  # noqa: E731
        lines.append(
            {
                "rows_per_request": n,
                "binary_p50_ms": binary,
                "json_p50_ms": ours,
                "bare_json_p50_ms": bare,
                "binary_over_json": ratio(binary, ours),
                "binary_over_bare_json": ratio(binary, bare),
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


def markdown(report: Report) -> str:
    """The binary section of latest.md."""
    part = report.get("binary")
    if not part:
        return ""
    lines = ["", "## Binary tensor data (REST) vs JSON, concurrency 1", ""]
    header = ["rows", "ours binary p50 ms", "ours JSON p50 ms", "bare JSON p50 ms"]
    header += ["binary / our JSON", "binary / bare JSON"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in part["rows"]:
        cells = [r["rows_per_request"], r["binary_p50_ms"], r["json_p50_ms"], r["bare_json_p50_ms"]]
        cells += [r["binary_over_json"], r["binary_over_bare_json"]]
        lines.append("| " + " | ".join("-" if c is None else f"{c}" for c in cells) + " |")
    lines += ["", *(f"- {goal}: {'met' if met else '**not met**'}" for goal, met in part["goals"].items())]
    return "\n".join(lines) + "\n"
