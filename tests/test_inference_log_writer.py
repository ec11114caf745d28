"""The inference log's writer on a real local Delta table: commits every N rows or T seconds, a full
buffer drops (counted) without blocking, a storage failure is retried until it heals, nothing is
committed twice, and ``attrition log compact`` with retention, which warns when it would delete
predictions the monthly outcomes report can still join."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from collections import Counter as Tally
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from attrition import cli
from attrition.inference_log import read
from attrition.inference_log.retention import REPORT_INTERVAL_DAYS, min_retention_days, retention_warning
from attrition.inference_log.table import TABLE_PROPERTIES, append, compact
from attrition.inference_log.writer import Counters, LogWriter, request_rows, to_arrow
from attrition.outcomes.join import DEFAULT_HORIZON_DAYS, join_outcomes
from attrition_runtime.settings import RuntimeSettings

pytestmark = pytest.mark.unit


def _rows(n: int, request_id: str = "r", key: str | None = None) -> dict[str, list]:
    return request_rows(
        request_id, [key] * n, "m", "1", "open", [0.5] * n, ["No"] * n, [0.1] * n, [False] * n, None
    )


def _tally() -> tuple[Tally, Counters]:
    counts: Tally = Tally()
    counters = Counters(
        written=lambda n: counts.update(written=n),
        dropped=lambda n: counts.update(dropped=n),
        failed_commits=lambda n: counts.update(failed=n),
    )
    return counts, counters


def _wait_for(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_commits_every_n_rows_then_every_t_seconds_then_on_close(tmp_path):
    location = str(tmp_path / "log")
    counts, counters = _tally()
    writer = LogWriter(location, commit_rows=10, commit_s=60, counters=counters).start()
    for i in range(3):
        assert writer.put(_rows(4, f"r{i}"), 4)
    _wait_for(lambda: counts["written"] == 12)  # 10 rows reached: committed long before 60 s
    writer.put(_rows(3, "r3"), 3)
    time.sleep(0.5)
    assert len(read(location)) == 12  # 3 rows wait for 10 or 60 s
    writer.close()
    assert len(read(location)) == 15 and counts["dropped"] == 0

    timed = LogWriter(str(tmp_path / "timed"), commit_rows=1000, commit_s=0.3).start()
    timed.put(_rows(3), 3)
    _wait_for(
        lambda: (tmp_path / "timed" / "_delta_log").exists() and len(read(str(tmp_path / "timed"))) == 3
    )
    timed.close()


def test_storage_failure_is_retried_never_blocks_and_a_full_buffer_is_counted(tmp_path):
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the table's folder should be: every commit fails")
    location = str(blocker / "log")
    counts, counters = _tally()
    writer = LogWriter(location, commit_rows=1, commit_s=0.1, capacity_rows=10, counters=counters).start()
    started = time.perf_counter()
    accepted = [writer.put(_rows(4, f"r{i}"), 4) for i in range(3)]
    assert time.perf_counter() - started < 0.05, "put waited on storage"
    assert accepted == [True, True, False] and counts["dropped"] == 4
    _wait_for(lambda: counts["failed"] >= 2)
    blocker.unlink()  # storage is back
    _wait_for(lambda: counts["written"] == 8)
    assert writer.close() == 0
    log = read(location)
    assert len(log) == 8 and sorted(set(log["request_id"])) == ["r0", "r1"]  # each row once


def test_close_gives_up_after_its_timeout_and_counts_what_it_lost(tmp_path):
    blocker = tmp_path / "blocked"
    blocker.write_text("x")
    counts, counters = _tally()
    writer = LogWriter(str(blocker / "log"), commit_rows=1000, commit_s=60, counters=counters).start()
    writer.put(_rows(7), 7)
    started = time.monotonic()
    assert writer.close(timeout_s=1.0) == 7
    assert time.monotonic() - started < 5 and counts["dropped"] == 7 and counts["written"] == 0


def test_the_table_is_created_with_a_checkpoint_every_10_commits(tmp_path):
    """Each append replays the commits since the last checkpoint: few, so a writer stays small."""
    location = tmp_path / "log"
    for i in range(11):
        append(str(location), to_arrow([_rows(1, f"r{i}")]))
    assert DeltaTable(str(location)).metadata().configuration == TABLE_PROPERTIES
    assert len(list((location / "_delta_log").glob("*.checkpoint.parquet"))) == 1  # at the 10th commit
    assert len(read(str(location))) == 11


def test_only_a_commit_loads_delta_rs():
    """MLServer's main process imports the runtime module and a worker its log writer: neither maps
    delta-rs (about 20 MiB of RSS each) until the writer thread's first commit."""
    script = (
        "import sys\n"
        "import attrition_runtime.runtime, attrition_runtime.logbook, attrition.inference_log\n"
        "print('deltalake' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def _day(location: str, day: dt.date, n: int, key: str | None = None) -> None:
    rows = to_arrow([_rows(n, f"{day}", key)])
    stamp = dt.datetime.combine(day, dt.time(12), dt.UTC)
    rows = rows.set_column(
        rows.schema.get_field_index("timestamp"),
        "timestamp",
        pa.array([stamp] * n, pa.timestamp("us", tz="UTC")),
    )
    rows = rows.set_column(rows.schema.get_field_index("date"), "date", pa.array([day] * n, pa.date32()))
    append(location, rows)


@pytest.mark.parametrize(("retention", "given_as"), [(None, None), (30, "--retention-days"), (30, "env")])
def test_log_compact_rewrites_small_files_and_deletes_days_past_retention(
    tmp_path, capsys, monkeypatch, retention, given_as
):
    location = str(tmp_path / "log")
    today = dt.datetime.now(dt.UTC).date()
    old, recent = today - dt.timedelta(days=40), today - dt.timedelta(days=1)
    for _ in range(4):
        _day(location, old, 2)
        _day(location, recent, 3)
    files_before = len(DeltaTable(location).file_uris())
    argv = ["log", "compact", "--log", location, "--vacuum-hours", "0"]
    monkeypatch.delenv("ATTRITION_INFERENCE_LOG_RETENTION_DAYS", raising=False)
    if given_as == "env":
        monkeypatch.setenv("ATTRITION_INFERENCE_LOG_RETENTION_DAYS", str(retention))
    assert (
        cli.main(argv + (["--retention-days", str(retention)] if given_as == "--retention-days" else [])) == 0
    )
    out, err = capsys.readouterr()
    assert ("compacted 8 files into 2" if retention is None else "deleted 8 rows past retention") in out
    # 30 days is shorter than the outcomes report needs: one line on stderr and in the summary, naming
    # where the retention came from and the report's horizon.
    if retention:
        setting = "ATTRITION_INFERENCE_LOG_RETENTION_DAYS" if given_as == "env" else given_as
        (line,) = err.splitlines()
        assert line.startswith(f"warning: {setting}=30 ") and "--horizon-days, 365" in line
        assert "at least 396 days" in line and out.rstrip().endswith("; " + line)
    else:
        assert "warning" not in out + err
    log = read(location)
    table = DeltaTable(location)
    assert files_before == 8 and len(table.file_uris()) == (2 if retention is None else 1)
    assert len(log) == (20 if retention is None else 12)
    assert (log["date"] >= recent).all() if retention else set(log["date"]) == {old, recent}
    on_disk = [f for f in Path(location).rglob("*.parquet") if "_delta_log" not in f.parts]
    assert len(on_disk) == len(table.file_uris())  # vacuumed


def test_log_compact_minimum_retention_keeps_exactly_what_the_monthly_report_joins(tmp_path):
    """The oldest prediction an outcome joins was made ``horizon`` days before it, and the monthly
    report runs up to a month after the outcome: compaction on the report's day with the minimum
    retention keeps that prediction, one day less loses it (the outcome then counts as unjoined), and
    a day more keeps nothing the report could join."""
    outcome_day = dt.date(2026, 6, 1)
    report_day = outcome_day + dt.timedelta(days=REPORT_INTERVAL_DAYS)
    outcomes = pd.DataFrame({"entity_key": ["k"], "left": [1], "date": [pd.Timestamp(outcome_day, tz="UTC")]})
    needed = min_retention_days()
    unjoined = {}
    for made_days_before, retention in ((DEFAULT_HORIZON_DAYS, needed), (DEFAULT_HORIZON_DAYS, needed - 1),
                                        (DEFAULT_HORIZON_DAYS + 1, None)):  # fmt: skip
        location = str(tmp_path / f"{made_days_before}-{retention}")
        _day(location, outcome_day - dt.timedelta(days=made_days_before), 1, key="k")
        _day(location, report_day, 1)  # the report day's own traffic
        compact(location, retention, today=report_day)
        unjoined[retention] = join_outcomes(read(location), outcomes, DEFAULT_HORIZON_DAYS).unjoined
    assert unjoined == {needed: 0, needed - 1: 1, None: 1}
    # The rule: the default horizon plus a month; the runtime's default (keep everything) satisfies it.
    assert needed == DEFAULT_HORIZON_DAYS + 31 and min_retention_days(90) == 121
    assert RuntimeSettings.model_fields["inference_log_retention_days"].default is None
    assert retention_warning(None, "S") is None and retention_warning(needed, "S") is None
    assert retention_warning(needed - 1, "S", horizon_days=90) is None
    assert "S=395 " in retention_warning(needed - 1, "S")


def test_log_compact_beside_a_live_writer_loses_nothing(tmp_path):
    """The daily CronJob compacts while the server's writers append: Delta lets both commit (appends do
    not conflict with optimize, nor with a delete of past days), and every appended row is kept."""
    location = str(tmp_path / "log")
    for _ in range(20):
        append(location, to_arrow([_rows(5)]))
    commits, errors, stop = [20], [], threading.Event()

    def keep_appending() -> None:
        while not stop.is_set():
            try:
                append(location, to_arrow([_rows(5, "live")]))
                commits[0] += 1
            except Exception as error:  # any failure is what the test reports
                errors.append(repr(error))

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        runs = [compact(location, retention_days=min_retention_days(), vacuum_hours=0) for _ in range(3)]
    finally:
        stop.set()
        writer.join()
    assert errors == [] and commits[0] > 20 and runs[-1].version > runs[0].version
    assert sum(run.files_compacted for run in runs) >= 20
    assert len(read(location)) == 5 * commits[0]


def test_a_drop_line_counts_every_row_dropped_since_the_previous_line(tmp_path, caplog):
    writer = LogWriter(str(tmp_path / "log"))  # not started: drop() alone
    with caplog.at_level("WARNING"):
        writer.drop(2, "the buffer is full")
        writer.drop(3, "the buffer is full")  # within 10 s of the first line: counted, not logged
        writer._last_drop_log -= 10.0
        writer.drop(4, "storage is down")
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert [line.split(" (")[0] for line in lines] == [
        "inference log: dropped 2 rows because the buffer is full",
        "inference log: dropped 7 rows because storage is down",
    ]
