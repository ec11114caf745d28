"""What the benchmark measures and writes, as typed data: its settings, and the JSON report
(``latest.json``, read by the book's performance chapter). ``SCHEMA`` is bumped on any incompatible
change of :class:`Report`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

SCHEMA = 2
Protocol = Literal["rest", "grpc"]
PROTOCOLS: tuple[Protocol, ...] = ("rest", "grpc")


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
    #: Rows of the in-process batch drift test (distinct random batches, as traffic brings them).
    drift_rows: int = 100
    #: Explanations and 1,000-row requests are slow: their own, smaller count bound.
    slow_max_requests: int = 100
    #: Synthetic rows scored on local Spark and with pandas (full runs only).
    batch_rows: int = 1_000_000


#: <= 8 s per cell: 21 server cells + in-process + two start-ups stay well under 5 minutes on 2 cores.
FULL = BenchSettings(quick=False, max_requests=4000, max_seconds=8.0, warmup=20)
QUICK = BenchSettings(quick=True, max_requests=15, max_seconds=1.0, warmup=2, slow_max_requests=3)


class Timing(TypedDict):
    p50_ms: float
    p99_ms: float
    mean_ms: float
    rps: float
    n: int


class Row(Timing):
    server: Literal["ours", "bare", "in-process"]
    protocol: Protocol | None
    rows_per_request: int
    concurrency: int


class Memory(TypedDict):
    peak_total_mib: float
    peak_main_mib: float
    peak_worker_mib: list[float]
    workers: int


class OursOverBare(TypedDict):
    protocol: Protocol
    rows_per_request: int
    concurrency: int
    p50: float | None
    p99: float | None
    rps: float | None


class Ratios(TypedDict):
    ours_over_bare: list[OursOverBare]
    #: {"protocol", "rows_per_request", "p50"}: a server's p50 over the in-process p50.
    ours_over_in_process: list[dict]
    #: {"server", "protocol", "p50"}: the 1,000-row p50 over the 1-row p50.
    large_over_small: list[dict]
    startup_ours_over_bare: float | None
    rss_ours_over_bare: float | None


class Target(TypedDict):
    name: str
    op: Literal["<=", ">="]
    target: float
    unit: str
    measured: float | None
    met: bool | None


class Report(TypedDict):
    schema: int
    date: str
    duration_s: float
    quick: bool
    #: cpu, cores, python, platform, loadavg_start, loadavg_end, versions {package: version}
    machine: dict
    #: BenchSettings, plus "server" (settings.json), "model" {uri, family, version, scoring}, "clients"
    settings: dict
    rows: list[Row]
    #: "server": the REST row of explain: true (1 row); "in_process": attributions of 1 row in process
    explain: dict[str, Row]
    #: the in-process batch drift test on ``drift_rows`` rows
    drift: Row
    #: mean microseconds of each step of our runtime's predict for one row (attrition_tools.bench.profile)
    profile: dict[str, float]
    #: full runs: attrition_tools.bench.spark.measure() (rows/s on local Spark and with pandas); quick: None
    batch: dict | None
    #: "rows": 1-row REST at the top concurrency, "ours, log off" and "ours, log on" (same run, alternating);
    #: "writer": the log's writer alone {"rows", "written", "dropped", "rows_per_s"}
    inference_log: dict
    startup: dict[str, dict[str, float]]
    memory: dict[str, Memory]
    ratios: Ratios
    targets: list[Target]
    #: attrition_tools.bench.binary.section(): binary tensor rows beside JSON, their ratios and goals
    binary: dict
