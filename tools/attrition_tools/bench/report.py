"""The benchmark's report: ratios measured side by side, the targets they are held to (reported, never
asserted), and the markdown table. Pure functions of the measured rows (schema.py)."""

from __future__ import annotations

import json
import math

from attrition_tools.bench.schema import PROTOCOLS, BenchSettings, Ratios, Report, Row, Target


def _find(rows: list[dict], server: str, protocol: str | None, n: int, concurrency: int) -> dict | None:
    for r in rows:
        key = (r["server"], r["protocol"], r["rows_per_request"], r["concurrency"])
        if key == (server, protocol, n, concurrency):
            return r
    return None


def _inference_log_section(report: Report) -> list[str]:
    log = report.get("inference_log")
    if not log:
        return []
    lines = ["", "## The inference log: off vs on (two servers, alternating rounds), and its writer", ""]
    lines += _table(
        ["server", "concurrency", "p50 ms", "p99 ms", "req/s"],
        [[r["server"], r["concurrency"], r["p50_ms"], r["p99_ms"], r["rps"]] for r in log["rows"]],
    )
    w = log["writer"]
    lines += ["", f"Writer alone: {w['written']:,} rows committed at {w['rows_per_s']:,.0f} rows/s "
              f"({w['dropped']} dropped)."]  # fmt: skip
    return lines


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or not math.isfinite(a) or not math.isfinite(b):
        return None
    return round(a / b, 3)


def ratios(report: Report, settings: BenchSettings) -> Ratios:
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


def targets(report: Report, settings: BenchSettings) -> list[Target]:
    """The performance issue's targets, reported (never asserted)."""
    rows, r = report["rows"], report["ratios"]

    def over_bare(protocol: str, n: int, concurrency: int, value: str) -> float | None:
        for entry in r["ours_over_bare"]:
            if (entry["protocol"], entry["rows_per_request"], entry["concurrency"]) == (
                protocol,
                n,
                concurrency,
            ):
                return entry[value]
        return None

    def p50(row: Row | None) -> float | None:
        return row and row["p50_ms"]

    top = max(settings.concurrency)
    items: list[tuple[str, str, float, str, float | None]] = [
        ("single-row REST p50, ours (full answer) / bare (probability)", "<=", 0.8, "x bare",
         over_bare("rest", 1, 1, "p50")),
    ]  # fmt: skip
    for protocol in PROTOCOLS:
        items.append(
            (f"{protocol} 1-row throughput at concurrency {top}, ours / bare", ">=", 1.2, "x bare",
             over_bare(protocol, 1, top, "rps"))
        )  # fmt: skip
    big = max(settings.rows)
    for protocol in PROTOCOLS:
        items.append(
            (f"{protocol} {big}-row throughput at concurrency {top} (batch drift on), ours / bare", ">=", 1.0,
             "x bare", over_bare(protocol, big, top, "rps"))
        )  # fmt: skip
    memory = report["memory"]["ours"]
    items += [
        ("in-process bundle (validate, probability, outlier), 1 row", "<=", 1.0, "ms",
         p50(_find(rows, "in-process", None, 1, 1))),
        (f"in-process bundle, {settings.large_rows} rows", "<=", 5.0, "ms",
         p50(_find(rows, "in-process", None, settings.large_rows, 1))),
        (f"batch drift test, {settings.drift_rows} rows, in process", "<=", 2.0, "ms", p50(report["drift"])),
        ("attribution explanation p50 (REST, 1 row)", "<=", 15.0, "ms", p50(report["explain"]["server"])),
        ("start to ready, ours", "<=", 4.0, "s", report["startup"]["ours"]["ready_s"]),
        ("peak RSS, whole process tree, ours", "<=", 600.0, "MiB", memory["peak_total_mib"]),
    ]  # fmt: skip
    items += _inference_log_targets(report, top)
    out: list[Target] = []
    for name, op, target, unit, measured in items:
        met = None if measured is None else (measured <= target if op == "<=" else measured >= target)
        out.append({"name": name, "op": op, "target": target, "unit": unit, "measured": measured, "met": met})
    return out


def _inference_log_targets(report: Report, top: int) -> list[tuple[str, str, float, str, float | None]]:
    """Log on over log off (same run, alternating rounds), and the writer's rows/s over the server's
    peak rows/s (the best rows/s of any cell of ours)."""
    log = report.get("inference_log")
    if not log:
        return []
    on, off = (next(r for r in log["rows"] if r["server"] == f"ours, log {side}") for side in ("on", "off"))
    peak = max((r["rps"] * r["rows_per_request"] for r in report["rows"] if r["server"] == "ours"), default=0)
    writer = log["writer"]["rows_per_s"]
    return [
        (f"REST 1-row throughput at concurrency {top}, log on / log off", ">=", 0.95, "x off",
         _ratio(on["rps"], off["rps"])),
        (f"REST 1-row p50 at concurrency {top}, log on / log off", "<=", 1.1, "x off",
         _ratio(on["p50_ms"], off["p50_ms"])),
        ("inference log writer rows/s / the server's peak rows/s", ">=", 5.0, "x peak", _ratio(writer, peak)),
    ]  # fmt: skip


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


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


def markdown(report: Report) -> str:
    sections = (_header, _ours_vs_bare, _ours_vs_in_process, _large_over_small, _inference_log_section,
                _explain_startup_memory, _profile, _batch, _targets)  # fmt: skip
    return "\n".join(line for section in sections for line in section(report)) + "\n"


def _header(report: Report) -> list[str]:
    """The run: machine, model, settings, and how to read the numbers."""
    m, s = report["machine"], report["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return [
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


def _ours_vs_bare(report: Report) -> list[str]:
    """Ours (full answer) against bare MLServer (classifier only), cell by cell."""
    lines: list[str] = []
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
    return lines


def _ours_vs_in_process(report: Report) -> list[str]:
    """Ours against validation and scoring in process."""
    lines: list[str] = []
    lines += ["", "## Ours vs in-process (validation + `TrustBundle.score_codes`)", ""]
    table = []
    for r in report["ratios"]["ours_over_in_process"]:
        local = _find(report["rows"], "in-process", None, r["rows_per_request"], 1)
        ours = _find(report["rows"], "ours", r["protocol"], r["rows_per_request"], 1)
        table.append([r["protocol"], r["rows_per_request"], local["p50_ms"], ours["p50_ms"], r["p50"]])
    lines += _table(["protocol", "rows", "in-process p50 ms", "ours p50 ms", "ratio"], table)
    return lines


def _large_over_small(report: Report) -> list[str]:
    """Large over small requests."""
    lines: list[str] = []
    lines += ["", "## Large over small requests (p50 of 1,000 rows / p50 of 1 row, concurrency 1)", ""]
    lines += _table(
        ["server", "protocol", "ratio"],
        [[r["server"], r["protocol"], r["p50"]] for r in report["ratios"]["large_over_small"]],
    )
    return lines


def _explain_startup_memory(report: Report) -> list[str]:
    """Explanations, the drift test, start-up and memory."""
    lines: list[str] = []
    e, st, mem = report["explain"], report["startup"], report["memory"]
    lines += ["", "## Explanations, start-up, memory", ""]
    lines += _table(
        ["measure", "ours", "bare", "in-process"],
        [
            ["explain: true p50 ms (1 row)", e["server"]["p50_ms"], "-", e["in_process"]["p50_ms"]],
            [
                f"batch drift test p50 ms ({report['drift']['rows_per_request']} rows)",
                "-",
                "-",
                report["drift"]["p50_ms"],
            ],
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
    return lines


def _profile(report: Report) -> list[str]:
    """Where a one-row request's time goes."""
    lines: list[str] = []
    profile = report["profile"]
    ours_rest = _find(report["rows"], "ours", "rest", 1, 1)
    lines += ["", "## Where a one-row request's time goes (our runtime's steps, in process, µs)", ""]
    rows = [[step, micros] for step, micros in profile.items()]
    if ours_rest:
        rows.append(["REST p50 of the whole request, ours", round(ours_rest["p50_ms"] * 1000, 1)])
        mlserver = ours_rest["p50_ms"] * 1000 - profile["total, ours"]
        rows.append(["of which MLServer's (parsing, the hop to the worker and back)", round(mlserver, 1)])
    lines += _table(["step", "µs"], rows)
    return lines


def _batch(report: Report) -> list[str]:
    """Batch scoring on Spark and with pandas, when the run measured it."""
    lines: list[str] = []
    batch = report.get("batch")
    if batch:
        spark, pandas = batch["spark"], batch["pandas"]
        lines += ["", f"## Batch scoring, {batch['rows']:,} synthetic rows", ""]
        lines += _table(
            ["path", "cores", "seconds", "rows/s"],
            [
                ["attrition score-table on local Spark (end to end)", spark["cores"], spark["seconds"],
                 spark["rows_per_s"]],
                ["Spark UDF only (checks and scoring, no output)", spark["cores"], spark["udf_only_seconds"],
                 spark["udf_only_rows_per_s"]],
                ["pandas, as attrition predict", pandas["cores"], pandas["seconds"], pandas["rows_per_s"]],
            ],
        )  # fmt: skip
    return lines


def _targets(report: Report) -> list[str]:
    """The targets, reported and not asserted."""
    lines: list[str] = []
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
    return lines
