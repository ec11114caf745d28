"""The benchmark's quick mode end to end: both real servers, every row, ratio and target in the report,
JSON and markdown written. No timing assertions: the machine is shared."""

from __future__ import annotations

import json
import math

import pytest

from attrition_tools import bench

pytestmark = [pytest.mark.server, pytest.mark.train]

SERVER_CELLS = [(1, 1), (1, 8), (100, 1), (100, 8), (1000, 1)]


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_quick_benchmark_reports_every_row_and_ratio(release, tmp_path):
    report = bench.run(bench.QUICK, tmp_path, progress=lambda _: None)

    keys = {(r["server"], r["protocol"], r["rows_per_request"], r["concurrency"]) for r in report["rows"]}
    expected = {("in-process", None, 1, 1), ("in-process", None, 1000, 1)}
    expected |= {(s, p, n, c) for s in ("ours", "bare") for p in ("rest", "grpc") for n, c in SERVER_CELLS}
    expected |= {("ours", "rest-binary", 1, 1), ("ours", "rest-binary", 1000, 1)}  # bare: a 500
    assert keys == expected
    for r in report["rows"]:
        assert r["n"] > 0 and all(_positive(r[k]) for k in ("p50_ms", "p99_ms", "rps")), r

    ratios = report["ratios"]
    assert {(r["protocol"], r["rows_per_request"], r["concurrency"]) for r in ratios["ours_over_bare"]} == {
        (p, n, c) for p in ("rest", "grpc") for n, c in SERVER_CELLS
    }
    assert all(_positive(r[k]) for r in ratios["ours_over_bare"] for k in ("p50", "p99", "rps"))
    assert len(ratios["ours_over_in_process"]) == 4 and len(ratios["large_over_small"]) == 5
    assert all(_positive(r["p50"]) for r in ratios["ours_over_in_process"] + ratios["large_over_small"])
    assert _positive(ratios["startup_ours_over_bare"]) and _positive(ratios["rss_ours_over_bare"])

    assert _positive(report["explain"]["server"]["p50_ms"]) and _positive(
        report["explain"]["in_process"]["p50_ms"]
    )
    assert all(_positive(v) for v in report["profile"].values()) and len(report["profile"]) == 8
    assert report["batch"] is None  # Spark only in full runs (tools/attrition_tools/bench/spark.py)
    assert report["drift"]["rows_per_request"] == 100 and _positive(report["drift"]["p50_ms"])
    for server in ("ours", "bare"):
        assert _positive(report["startup"][server]["ready_s"])
        memory = report["memory"][server]
        assert len(memory["peak_worker_mib"]) == memory["workers"] >= 1
        assert memory["peak_total_mib"] >= max(memory["peak_main_mib"], *memory["peak_worker_mib"]) > 0
    log = report["inference_log"]
    assert [r["server"] for r in log["rows"]] == ["ours, log off", "ours, log on"]
    assert all(_positive(r[k]) for r in log["rows"] for k in ("p50_ms", "rps"))
    assert log["writer"]["dropped"] == 0 and log["writer"]["written"] == log["writer"]["rows"] > 0
    assert len(report["targets"]) == 14
    assert all(_positive(t["measured"]) and isinstance(t["met"], bool) for t in report["targets"])

    binary = report["binary"]
    assert [r["rows_per_request"] for r in binary["rows"]] == [1, 1000] and len(binary["goals"]) == 2
    assert all(_positive(r[k]) for r in binary["rows"] for k in ("binary_over_json", "binary_over_bare_json"))

    assert json.loads((tmp_path / "latest.json").read_text()) == report
    markdown = (tmp_path / "latest.md").read_text()
    assert report["date"] in markdown and report["machine"]["cpu"] in markdown
    # 8 tables: header + rows (the inference log's: off and on; the targets: 14)
    assert markdown.count("\n| ") == 5 + 10 + 4 + 5 + 3 + 6 + 11 + 14 + 3
