"""The soak (``make soak``): does the server keep answering, with flat latency and memory, over minutes of
mixed traffic? The benchmark measures seconds; this measures whether minutes of load wear it down.

Against a real server on 127.0.0.1 (started here with :class:`attrition_tools.serve.Server`, or any
running one through :func:`soak`): 16 closed-loop clients (the benchmark's :func:`closed_loop`), each
request drawn at random: 1-row and 100-row scoring, 5% ``explain: true``, 10% bad bodies (malformed JSON,
unknown category, NaN, missing input, and byte-level ones: :func:`attrition_tools.fuzz.surely_bad`),
over REST (aiohttp, V2 JSON) or gRPC (``tritonclient.grpc.aio``),
built with the project's own client code. The process tree's RSS is sampled every second (the
benchmark's :class:`RssSampler`).

Every answer gets one class: ``2xx`` (a 200 whose probabilities are in [0, 1]), ``2xx_wrong`` (a 200
without them, or a bad body accepted), ``4xx_expected`` (a bad body refused), ``4xx_unexpected``,
``shed`` (429/503 with ``Retry-After``; over gRPC ``RESOURCE_EXHAUSTED``, or ``UNAVAILABLE`` with a
retry hint in the trailers, since gRPC has no such header), ``5xx`` (gRPC ``INTERNAL``, ``UNKNOWN``, ...)
and ``transport`` (no answer: connection errors, timeouts). Only explanation requests may be shed: the
issue's load shedding caps explanations, never scoring.

Duration: ``SOAK_SECONDS`` (default 600) or ``--seconds``. Output: a table on stdout and
``soak.json`` (+ ``soak.md``, the same tables) in ``book/benchmark/`` for a full-length run, in a temp
folder for a shorter one, or at ``--out``. Exit code 1 when a check fails (see :func:`checks`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np

from attrition import config, registry
from attrition.contract.outputs import EXPLANATION, ROW_OUTPUTS
from attrition.training import data

# Not contract.py nor runtime.py: they import mlserver, whose gRPC stubs clash with tritonclient's.
from attrition_runtime.client import triton_inputs, v2_request
from attrition_runtime.wire import model_path
from attrition_tools import fuzz
from attrition_tools.bench.measure import MIB, RssSampler, closed_loop, machine, summarise
from attrition_tools.serve import SERVED_MODEL_NAME, SERVER_DIR, Server, ensure_model, free_ports

SCHEMA = 1
DEFAULT_SECONDS = 600.0
SECONDS_ENV = "SOAK_SECONDS"
OUT_FILE = config.project_home() / "book" / "benchmark" / "soak.json"
#: Explanations are the slowest request; 30 s is three times the anchor budget and ends a hung call.
REQUEST_TIMEOUT_S = 30.0
PROBABILITY = ROW_OUTPUTS[0].name
CLASSES = ("2xx", "2xx_wrong", "4xx_expected", "4xx_unexpected", "shed", "5xx", "transport")
#: Classes that are no error: a valid 200, a bad body refused, an explanation shed with Retry-After.
FINE = ("2xx", "4xx_expected", "shed")
BAD_KINDS = ("bad-json", "bad-category", "bad-nan", "bad-missing", "bad-bytes")
KINDS = ("score-1", "score-100", "explain", *BAD_KINDS)
#: What the report holds (tests check each is there).
SECTIONS = ("schema", "date", "settings", "machine", "model", "totals", "kinds", "slices", "rss")
SECTIONS += ("checks", "examples", "passed", "duration_s")
RSS_GROWTH_LIMIT_PCT = 5.0


@dataclass(frozen=True)
class SoakSettings:
    """How long and what mix; shares are of all requests, ``large_share`` of the scoring ones."""

    seconds: float = DEFAULT_SECONDS
    concurrency: int = 16
    explain_share: float = 0.05
    bad_share: float = 0.10
    large_share: float = 0.3
    grpc_share: float = 0.5
    large_rows: int = 100
    slices: int = 10
    rss_interval_s: float = 1.0
    seed: int = 0
    #: Distinct bodies per kind, built once: serialising during the run would load the 2 shared cores.
    pool: int = 64
    #: Azurite (the inference log's storage) is stopped this long in the middle of the run.
    outage_s: float = 30.0


# --- requests ---------------------------------------------------------------------------------------


@dataclass
class Request:
    """One prepared request: its REST body and its gRPC inputs (``None``: REST only)."""

    kind: str
    rows: int
    body: bytes
    grpc_inputs: list | None
    parameters: dict | None = None
    #: REST headers when not JSON's (the byte-level bad bodies)
    headers: dict[str, str] | None = None

    @property
    def bad(self) -> bool:
        return self.kind in BAD_KINDS


def _dumps(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()  # NaN stays the literal NaN: a bad body


def build_pools(settings: SoakSettings) -> dict[str, list[Request]]:
    """Bodies for every kind from random rows of the data set (repeated rows would flatter a cache)."""
    from tritonclient import grpc as triton_grpc

    features, _ = data.load()
    records = features.to_dict(orient="records")
    rng = random.Random(settings.seed)

    def request(kind: str, rows: list[dict], parameters: dict | None = None) -> Request:
        body = _dumps(v2_request(rows, parameters))
        return Request(kind, len(rows), body, triton_inputs(rows, triton_grpc), parameters)

    def without_age(row: dict) -> Request:
        body = v2_request([row])
        body["inputs"] = [i for i in body["inputs"] if i["name"] != "Age"]
        inputs = [i for i in triton_inputs([row], triton_grpc) if i.name() != "Age"]
        return Request("bad-missing", 1, _dumps(body), inputs)

    pools: dict[str, list[Request]] = {kind: [] for kind in KINDS}
    for _ in range(settings.pool):
        row = rng.choice(records)
        pools["score-1"].append(request("score-1", [row]))
        pools["score-100"].append(request("score-100", rng.sample(records, settings.large_rows)))
        pools["explain"].append(request("explain", [row], {"explain": True}))
        pools["bad-category"].append(request("bad-category", [{**row, "Department": "Marketing"}]))
        pools["bad-nan"].append(request("bad-nan", [{**row, "MonthlyIncome": float("nan")}]))
        pools["bad-missing"].append(without_age(row))
        truncated = _dumps(v2_request([row]))[: rng.randrange(1, 200)]
        pools["bad-json"].append(Request("bad-json", 1, truncated, None))  # JSON only exists over REST
    for body, headers in fuzz.surely_bad(settings.seed, settings.pool):  # bytes exist over REST only
        pools["bad-bytes"].append(Request("bad-bytes", 1, body, None, headers=headers))
    return pools


def draw(rng: random.Random, settings: SoakSettings, pools: dict[str, list[Request]]) -> tuple[Request, str]:
    """One request of the mix and its protocol."""
    u = rng.random()
    if u < settings.bad_share:
        kind = rng.choice(BAD_KINDS)
    elif u < settings.bad_share + settings.explain_share:
        kind = "explain"
    else:
        kind = "score-100" if rng.random() < settings.large_share else "score-1"
    chosen = rng.choice(pools[kind])
    protocol = "grpc" if chosen.grpc_inputs is not None and rng.random() < settings.grpc_share else "rest"
    return chosen, protocol


# --- answers ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    cls: str
    status: int | str
    detail: str = ""
    retry_after: float = 0.0
    #: The V2 answer's id of a request answered 200 (the inference log's ``request_id``).
    request_id: str = ""


def valid_probabilities(values, rows: int) -> bool:
    p = np.asarray(values, dtype=float)
    return p.shape == (rows,) and bool(np.all(np.isfinite(p) & (p >= 0.0) & (p <= 1.0)))


def rest_outcome(request: Request, status: int, headers, text: bytes) -> Outcome:
    if status == 200:
        if request.bad:
            return Outcome("2xx_wrong", status, "bad body accepted")
        try:
            answer = json.loads(text)
            outputs = {o["name"]: o["data"] for o in answer["outputs"]}
        except (ValueError, KeyError, TypeError) as error:
            return Outcome("2xx_wrong", status, f"unreadable answer: {error!r}")
        outcome = _checked(request, outputs.get(PROBABILITY), outputs.get(EXPLANATION.name), status)
        return replace(outcome, request_id=str(answer.get("id") or ""))
    retry_after = headers.get("Retry-After")
    if status in (429, 503) and retry_after is not None:
        return Outcome("shed", status, text[:300].decode(errors="replace"), _seconds(retry_after))
    if 400 <= status < 500:
        cls = "4xx_expected" if request.bad else "4xx_unexpected"
    else:
        cls = "5xx" if status >= 500 else "4xx_unexpected"  # 1xx/3xx: never sent by MLServer
    return Outcome(cls, status, text[:300].decode(errors="replace"))


def _checked(request: Request, probability, explanation, status) -> Outcome:
    if probability is None or not valid_probabilities(probability, request.rows):
        return Outcome("2xx_wrong", status, f"{PROBABILITY} not {request.rows} values in [0, 1]")
    if request.parameters and (explanation is None or len(explanation) != request.rows):
        return Outcome("2xx_wrong", status, f"no {EXPLANATION.name} output")
    return Outcome("2xx", status)


def _seconds(retry_after: str) -> float:
    try:
        return max(float(retry_after), 0.0)
    except ValueError:  # an HTTP date: honour it as one second
        return 1.0


_CLIENT_CODES = {"INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "OUT_OF_RANGE", "ALREADY_EXISTS"}
_CLIENT_CODES |= {"PERMISSION_DENIED", "UNAUTHENTICATED"}
#: grpc core's words for a connection that failed or broke: no answer from the server, a transport error.
_TRANSPORT = re.compile(
    r"failed to connect|connection (refused|reset)|socket closed|broken pipe|goaway", re.I
)
_RETRY_KEYS = ("retry-after", "grpc-retry-pushback-ms")


def grpc_outcome(request: Request, error: Exception) -> Outcome:
    """Class of a failed gRPC call; tritonclient re-raises ``from None``, the grpc error is the context."""
    import grpc

    rpc = error.__context__
    if not isinstance(rpc, grpc.aio.AioRpcError):
        return Outcome("transport", type(error).__name__, str(error)[:300])
    code, details = rpc.code().name, rpc.details() or ""
    hints = {k: v for k, v in (rpc.trailing_metadata() or ()) if k in _RETRY_KEYS}
    retry = _seconds(hints["retry-after"]) if "retry-after" in hints else 0.0
    if "grpc-retry-pushback-ms" in hints:
        retry = _seconds(hints["grpc-retry-pushback-ms"]) / 1000
    if code == "RESOURCE_EXHAUSTED" or (code == "UNAVAILABLE" and hints):
        cls = "shed"
    elif code in _CLIENT_CODES:
        cls = "4xx_expected" if request.bad else "4xx_unexpected"
    elif code in ("DEADLINE_EXCEEDED", "CANCELLED") or (
        code == "UNAVAILABLE" and _TRANSPORT.search(details + (rpc.debug_error_string() or ""))
    ):
        cls = "transport"
    else:  # INTERNAL, UNKNOWN, UNIMPLEMENTED, DATA_LOSS, ABORTED, a bare UNAVAILABLE from the server
        cls = "5xx"
    return Outcome(cls, code, details[:300], retry)


# --- the run ----------------------------------------------------------------------------------------


class RssSeries(RssSampler):
    """The benchmark's sampler, keeping every sample's sum too (it keeps peaks only): the growth
    check needs the series. The sum is read back through ``peak_total``, reset around each sample."""

    def __init__(self, pid: int, interval: float, started: float):
        super().__init__(pid, interval)
        self.started = started
        self.series: list[tuple[float, int]] = []  # (seconds since start, bytes)

    def sample(self) -> None:
        peak, self.peak_total = self.peak_total, 0
        super().sample()
        total, self.peak_total = self.peak_total, max(peak, self.peak_total)
        if total:
            self.series.append((time.perf_counter() - self.started, total))


@dataclass
class Record:
    start_s: float
    latency_s: float
    kind: str
    protocol: str
    outcome: Outcome
    rows: int = 0


@dataclass
class Traffic:
    """What the clients saw, appended to by each request (one event loop: no lock needed)."""

    records: list[Record] = field(default_factory=list)
    classes: Counter = field(default_factory=Counter)


class _Clients:
    """The soak's closed-loop clients over one REST session and one gRPC channel: each ``send`` draws
    a request, sends it by its protocol, classifies the answer and records it in ``traffic``."""

    def __init__(self, http_url: str, settings: SoakSettings, pools, started: float, session, client):
        self.url = f"{http_url}{model_path(SERVED_MODEL_NAME, 'infer')}"
        self.settings, self.pools, self.started = settings, pools, started
        self.deadline = started + settings.seconds
        self.rng = random.Random(settings.seed + 1)
        self.session, self.client = session, client
        self.traffic = Traffic()

    async def rest(self, request: Request) -> Outcome:
        headers = request.headers or {"Content-Type": "application/json"}
        async with self.session.post(self.url, data=request.body, headers=headers) as response:
            return rest_outcome(request, response.status, response.headers, await response.read())

    async def grpc(self, request: Request) -> Outcome:
        try:
            result = await self.client.infer(
                SERVED_MODEL_NAME,
                request.grpc_inputs,
                parameters=request.parameters,
                client_timeout=REQUEST_TIMEOUT_S,
            )
        except Exception as error:  # every failure is classified
            return grpc_outcome(request, error)
        if request.bad:
            return Outcome("2xx_wrong", "OK", "bad body accepted")
        explanation = result.as_numpy(EXPLANATION.name) if request.parameters else None
        outcome = _checked(request, result.as_numpy(PROBABILITY), explanation, "OK")
        return replace(outcome, request_id=result.get_response().id)

    async def send(self) -> None:
        import aiohttp

        request, protocol = draw(self.rng, self.settings, self.pools)
        t = time.perf_counter()
        try:
            outcome = await (self.grpc(request) if protocol == "grpc" else self.rest(request))
        except (aiohttp.ClientError, TimeoutError) as error:
            outcome = Outcome("transport", type(error).__name__, str(error)[:300])
        done = time.perf_counter()
        self.traffic.records.append(
            Record(t - self.started, done - t, request.kind, protocol, outcome, request.rows)
        )
        self.traffic.classes[outcome.cls] += 1
        if outcome.cls == "shed":  # a well-behaved client waits as told (never past the deadline)
            await asyncio.sleep(min(outcome.retry_after, max(self.deadline - done, 0)))

    async def report_progress(self, progress) -> None:
        step = self.settings.seconds / self.settings.slices
        for i in range(1, self.settings.slices):
            await asyncio.sleep(max(self.started + i * step - time.perf_counter(), 0))
            errors = sum(n for c, n in self.traffic.classes.items() if c not in FINE)
            progress(f"soak: {i * step:5.0f}s {len(self.traffic.records):7d} requests, {errors} errors")


async def drive(
    http_url: str, grpc_address: str, settings: SoakSettings, pools, started: float, progress
) -> Traffic:
    """``settings.concurrency`` closed-loop clients until the deadline; every answer classified."""
    import aiohttp
    from tritonclient.grpc import aio as grpc_client

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=settings.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        client = grpc_client.InferenceServerClient(grpc_address)
        clients = _Clients(http_url, settings, pools, started, session, client)
        try:
            remaining = clients.deadline - time.perf_counter()
            # In-flight calls end by their own timeout before this one.
            async with asyncio.timeout(remaining + REQUEST_TIMEOUT_S + 10):
                await asyncio.gather(
                    closed_loop(clients.send, settings.concurrency, sys.maxsize, remaining, warmup=0),
                    clients.report_progress(progress),
                )
        finally:
            await client.close()
    return clients.traffic


def served_model(http_url: str) -> dict:
    """What the server says it serves (its V2 metadata without the 30 inputs)."""
    with urllib.request.urlopen(f"{http_url}{model_path(SERVED_MODEL_NAME)}", timeout=10) as response:
        metadata = json.load(response)
    return {k: metadata[k] for k in ("name", "versions", "platform") if k in metadata}


def soak(
    http_url: str,
    grpc_address: str,
    server_pid: int,
    settings: SoakSettings = SoakSettings(),  # noqa: B008 (frozen)
    model: dict | None = None,
    progress: Callable[[str], None] = print,
    answered: dict[str, int] | None = None,
) -> dict:
    """Soak a running server (its REST URL, gRPC address and main process id); the report. With
    ``answered``, it is filled with the rows of each request answered 200, by the answer's id."""
    begun = time.monotonic()
    report: dict = {
        "schema": SCHEMA,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": asdict(settings)
        | {
            "request_timeout_s": REQUEST_TIMEOUT_S,
            "server": json.loads((SERVER_DIR / "settings.json").read_text()),
            "clients": {
                "rest": f"aiohttp {version('aiohttp')} (JSON)",
                "grpc": f"tritonclient {version('tritonclient')} (grpc.aio)",
            },
        },
        "machine": machine(),
        "model": served_model(http_url) | (model or {}),
    }
    pools = build_pools(settings)
    progress(f"soak: {settings.seconds:.0f}s at concurrency {settings.concurrency} on {http_url} ...")
    started = time.perf_counter()
    with RssSeries(server_pid, settings.rss_interval_s, started) as memory:
        traffic = asyncio.run(drive(http_url, grpc_address, settings, pools, started, progress))
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if answered is not None:
        answered.update({r.outcome.request_id: r.rows for r in traffic.records if r.outcome.cls == "2xx"})
    workers = max(int(report["settings"]["server"].get("parallel_workers", 1)), 1)
    report |= summary(traffic, memory, settings, workers)
    report["checks"] = checks(report)
    report["passed"] = all(c["met"] for c in report["checks"])
    report["duration_s"] = round(time.monotonic() - begun, 1)
    return report


# --- the report -------------------------------------------------------------------------------------


def _timing(latencies: list[float], elapsed: float) -> dict:
    if not latencies:
        return {"p50_ms": None, "p99_ms": None, "mean_ms": None, "rps": 0.0, "n": 0}
    return summarise(latencies, elapsed)


def _counts(records: list[Record]) -> dict[str, int]:
    found = Counter(r.outcome.cls for r in records)
    return {c: found.get(c, 0) for c in CLASSES}


def _mean(values: list[int]) -> float:
    return float(np.mean(values)) / MIB if values else 0.0


def rss_growth(totals: list[int]) -> dict:
    """The last 10% of samples against the 10% centred on the half-way point (means, MiB)."""
    n = len(totals)
    k = max(1, round(n * 0.1))
    half = max(n // 2 - k // 2, 0)
    mid, last = _mean(totals[half : half + k]), _mean(totals[n - k :])
    if not n or not mid > 0:  # no samples: nothing measured (None, as JSON has no NaN)
        return {"mid_mean_mib": None, "last_mean_mib": None, "growth_pct": None}
    return {
        "mid_mean_mib": round(mid, 1),
        "last_mean_mib": round(last, 1),
        "growth_pct": round((last / mid - 1) * 100, 2),
    }


def summary(traffic: Traffic, memory: RssSeries, settings: SoakSettings, workers: int) -> dict:
    """Totals, per kind and protocol, per time slice, RSS; and the first answers that were not fine."""
    records, seconds = traffic.records, settings.seconds
    totals = {
        "requests": len(records),
        **_timing([r.latency_s for r in records], seconds),
        "classes": _counts(records),
        # Rows of the requests answered 200 with probabilities: what the inference log must hold.
        "rows_answered": sum(r.rows for r in records if r.outcome.cls == "2xx"),
    }
    kinds = []
    for kind in KINDS:
        for protocol in ("rest", "grpc"):
            mine = [r for r in records if r.kind == kind and r.protocol == protocol]
            if mine:
                timing = _timing([r.latency_s for r in mine], seconds)
                kinds.append({"kind": kind, "protocol": protocol, **timing, "classes": _counts(mine)})
    step = seconds / settings.slices
    slices = []
    for i in range(settings.slices):
        low, high = i * step, (i + 1) * step
        mine = [
            r for r in records if low <= r.start_s < high or (i == settings.slices - 1 and r.start_s >= high)
        ]
        rss = [b for t, b in memory.series if low <= t < high]
        one_row = [r.latency_s for r in mine if r.kind == "score-1" and r.outcome.cls == "2xx"]
        slices.append(
            {
                "start_s": round(low, 1),
                "end_s": round(high, 1),
                "requests": len(mine),
                "errors": sum(1 for r in mine if r.outcome.cls not in FINE),
                **_timing([r.latency_s for r in mine], step),
                "score_1_p50_ms": _timing(one_row, step)["p50_ms"],
                "rss_mib": round(_mean(rss), 1) if rss else None,
            }
        )
    series = [b for _, b in memory.series]
    rss = {
        "interval_s": settings.rss_interval_s,
        "samples_mib": [[round(t, 1), round(b / MIB, 1)] for t, b in memory.series],
        **rss_growth(series),
        **memory.report(workers),
    }
    examples = [
        {"kind": r.kind, "protocol": r.protocol, **asdict(r.outcome)}
        for r in records
        if r.outcome.cls not in FINE or (r.outcome.cls == "shed" and r.kind != "explain")
    ][:20]
    return {"totals": totals, "kinds": kinds, "slices": slices, "rss": rss, "examples": examples}


def _count(report: dict, kinds, fine) -> tuple[int, int]:
    """(requests of these kinds, how many of them got a class not in ``fine``)."""
    rows = [k for k in report["kinds"] if k["kind"] in kinds]
    total = sum(k["n"] for k in rows)
    return total, sum(n for k in rows for c, n in k["classes"].items() if c not in fine)


def checks(report: dict) -> list[dict]:
    """The soak's bar; each with what was measured and the limit."""
    classes = report["totals"]["classes"]
    scored, scoring_failed = _count(report, ("score-1", "score-100"), ("2xx",))
    explained, explain_failed = _count(report, ("explain",), ("2xx", "shed"))
    bad, bad_failed = _count(report, BAD_KINDS, ("4xx_expected",))
    growth = report["rss"]["growth_pct"]
    return [
        {"check": "responses 5xx", "measured": classes["5xx"], "limit": "0", "met": classes["5xx"] == 0},
        {
            "check": "transport errors",
            "measured": classes["transport"],
            "limit": "0",
            "met": classes["transport"] == 0,
        },
        {
            "check": "well-formed requests not answered 200 with probabilities in [0, 1]",
            "measured": scoring_failed + explain_failed,
            "limit": f"0 of {scored + explained} (explanations may be shed with Retry-After)",
            "met": scored > 0 and scoring_failed + explain_failed == 0,
        },
        {
            "check": "bad bodies not answered 4xx",
            "measured": bad_failed,
            "limit": f"0 of {bad}",
            "met": bad > 0 and bad_failed == 0,
        },
        {
            "check": "RSS growth in the second half, %",
            "measured": growth,
            "limit": f"< {RSS_GROWTH_LIMIT_PCT}",
            "met": growth is not None and growth < RSS_GROWTH_LIMIT_PCT,
        },
    ]


def markdown(report: dict) -> str:
    """The tables: answers by class per kind, latency and RSS per time slice, checks."""
    t = report["totals"]
    head = "| kind | protocol | requests | p50 ms | p99 ms | " + " | ".join(CLASSES) + " |"
    lines = [
        f"Soak of {report['settings']['seconds']:.0f} s at concurrency {report['settings']['concurrency']}"
        f" on {report['machine']['cpu']} ({report['machine']['cores']} cores), {report['date']}: "
        f"{t['requests']} requests, {t['rps']} requests/s, {'passed' if report['passed'] else 'FAILED'}.",
        "",
        head,
        "|" + "---|" * (5 + len(CLASSES)),
    ]
    for k in [*report["kinds"], {"kind": "all", "protocol": "", **t}]:
        counts = " | ".join(str(k["classes"][c]) for c in CLASSES)
        timing = f"{k['n']} | {_ms(k['p50_ms'])} | {_ms(k['p99_ms'])}"
        lines.append(f"| {k['kind']} | {k['protocol']} | {timing} | {counts} |")
    lines += [
        "",
        "| time s | requests | errors | p50 ms | p99 ms | 1-row p50 ms | RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in report["slices"]:
        lines.append(
            f"| {s['start_s']:.0f}-{s['end_s']:.0f} | {s['requests']} | {s['errors']} | {_ms(s['p50_ms'])} | "
            f"{_ms(s['p99_ms'])} | {_ms(s['score_1_p50_ms'])} | {s['rss_mib'] or '-'} |"
        )
    rss = report["rss"]
    lines += [
        "",
        f"RSS (process tree, every {rss['interval_s']:g} s): {rss['mid_mean_mib']} MiB at half-way, "
        f"{rss['last_mean_mib']} MiB in the last 10%, peak {rss['peak_total_mib']} MiB.",
        "",
        "| check | measured | limit | met |",
        "|---|---|---|---|",
    ]
    for c in report["checks"]:
        lines.append(f"| {c['check']} | {c['measured']} | {c['limit']} | {'yes' if c['met'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def _ms(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def write(report: dict, out: Path) -> None:
    """``out`` (JSON) and the tables beside it (``.md``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))


# --- make soak --------------------------------------------------------------------------------------


def soak_logged(uri: str, settings: SoakSettings, log: Path, progress: Callable[[str], None] = print) -> dict:
    """The soak of a server that writes its inference log to Azurite, with a storage outage of
    ``settings.outage_s`` in the middle; the report gains the log's section and checks."""
    from attrition_tools import soak_log

    answered: dict[str, int] = {}
    with soak_log.logged_storage() as (env, azurite, location):
        with Server(uri, ports=free_ports(), env=env, log_path=log) as server:
            model = {"uri": uri, "version": registry.version_of(uri)}
            soak_log.outage(azurite, (settings.seconds - settings.outage_s) / 2, settings.outage_s, progress)
            pid = server.process.pid
            report = soak(server.http_url, server.grpc_address, pid, settings, model, progress, answered)
            counts = (
                soak_log.metric(server.metrics_url, name) for name in (soak_log.DROPPED, soak_log.FAILED)
            )
            dropped, failed = counts
        dropped += soak_log.dropped_at_close(log)
        report["inference_log"] = soak_log.check(answered, location, azurite.environment(), dropped, failed)
    report["checks"] += soak_log.checks(report["inference_log"])
    report["passed"] = all(c["met"] for c in report["checks"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attrition-soak", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get(SECONDS_ENV) or DEFAULT_SECONDS),
        help=f"duration (default {SECONDS_ENV} or {DEFAULT_SECONDS:.0f})",
    )
    parser.add_argument("--concurrency", type=int, default=SoakSettings.concurrency)
    parser.add_argument(
        "--out", type=Path, help=f"JSON file (default {OUT_FILE} for a full run, else a temp folder)"
    )
    args = parser.parse_args(argv)
    # A 30 s outage in a ten-minute run; a third of a shorter one.
    outage_s = min(SoakSettings.outage_s, args.seconds / 3)
    settings = SoakSettings(seconds=args.seconds, concurrency=args.concurrency, outage_s=outage_s)
    full = settings.seconds >= DEFAULT_SECONDS
    out = args.out or (OUT_FILE if full else Path(tempfile.gettempdir()) / "attrition-soak" / "soak.json")
    # SIGTERM ends the run like Ctrl-C: the server (in a session of its own) is then stopped, not orphaned.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config.configure_mlflow()
    uri = ensure_model()
    log = Path(tempfile.mkdtemp(prefix="attrition-soak-")) / "mlserver.log"
    try:
        report = soak_logged(uri, settings, log)
    except KeyboardInterrupt:
        print(f"soak: interrupted, server stopped; its log: {log}", file=sys.stderr)
        return 130
    write(report, out)
    print("\n" + markdown(report))
    print(f"written: {out}, {out.with_suffix('.md')} in {report['duration_s']:.0f}s; server log {log}")
    if not report["passed"]:
        for example in report["examples"][:5]:
            print(f"  e.g. {example}", file=sys.stderr)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
