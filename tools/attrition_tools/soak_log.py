"""The soak with the inference log on, through Azurite's real Azure Blob API: the server writes to an
``abfss://`` URL, Azurite is stopped for ``outage_s`` in the middle of the run, and after SIGTERM every
row answered 200 must be in the table, or counted as dropped, never silently lost (and none twice)."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from attrition.inference_log import ENTITY_KEY_ENV, read
from attrition_runtime.settings import INFERENCE_LOG_ENV
from attrition_tools.azurite import Azurite

DROPPED = "attrition_inference_log_dropped_rows_total"
FAILED = "attrition_inference_log_failed_commits_total"


def metric(metrics_url: str, name: str) -> float:
    """A counter summed over its labels, from the server's /metrics."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def outage(
    azurite: Azurite, at_s: float, seconds: float, progress: Callable[[str], None]
) -> threading.Thread:
    """Stop Azurite ``at_s`` seconds from now for ``seconds``, in the background (data kept)."""

    def run() -> None:
        time.sleep(at_s)
        progress(f"soak: Azurite stopped for {seconds:.0f} s (storage outage)")
        azurite.stop()
        time.sleep(seconds)
        azurite.start()
        progress("soak: Azurite back")

    thread = threading.Thread(target=run, name="azurite-outage", daemon=True)
    thread.start()
    return thread


@contextmanager
def logged_storage(secret: str = "soak-secret"):
    """Azurite with a container; yields (the server's extra environment, the Azurite, the location)."""
    with Azurite() as azurite:
        azurite.create_container("soak")
        location = azurite.location("soak", "inference-log")
        env = {INFERENCE_LOG_ENV: location, ENTITY_KEY_ENV: secret, **azurite.environment()}
        yield env, azurite, location


def dropped_at_close(server_log: Path) -> int:
    """Rows the writers reported they could not commit at shutdown (after /metrics was last read)."""
    text = server_log.read_text(errors="replace") if server_log.exists() else ""
    return sum(int(n) for n in re.findall(r"inference log: flushed and closed \((\d+) rows", text))


def check(
    answered: dict[str, int], location: str, environment: dict[str, str], dropped: float, failed: float
) -> dict:
    """The log's section of the soak report, read after the server stopped: each request answered 200
    (its rows, by the answer's id) against the rows the table holds for that id; the rows of answered
    requests not in the table must all be counted as dropped (during the run, and at shutdown)."""
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)  # delta-rs reads the emulator's endpoint from the environment
    try:
        logged = read(location)
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
    unique = logged.drop_duplicates(["request_id", "row_index"])
    per_request = unique["request_id"].value_counts().to_dict()
    absent = sum(rows - min(rows, per_request.get(request_id, 0)) for request_id, rows in answered.items())
    return {
        "location": location,
        "rows_answered": sum(answered.values()),
        "rows_logged": len(logged),
        "rows_logged_twice": len(logged) - len(unique),
        # Scored for a client that gave up waiting (not answered 200 to anyone): logged, not a loss.
        "rows_logged_unanswered": int(unique["request_id"].map(lambda i: i not in answered).sum()),
        "rows_answered_not_logged": absent,
        "rows_dropped": int(dropped),
        "failed_commits": int(failed),
        "rows_missing": max(absent - int(dropped), 0),
    }


def checks(log: dict) -> list[dict]:
    return [
        {
            "check": "rows answered 200 neither in the inference log nor counted as dropped",
            "measured": log["rows_missing"],
            "limit": f"0 of {log['rows_answered']}",
            "met": log["rows_missing"] == 0 and log["rows_answered"] > 0,
        },
        {
            "check": "rows in the inference log twice",
            "measured": log["rows_logged_twice"],
            "limit": "0",
            "met": log["rows_logged_twice"] == 0,
        },
    ]
