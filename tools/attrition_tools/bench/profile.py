"""Where a one-row request's time goes inside our runtime: each step of ``AttritionRuntime.predict``
timed on its own, in process, with MLServer's own types and codecs. What a server's p50 adds on top
is MLServer's (HTTP or gRPC parsing, the hop to the worker process and back, the response).

Run by ``make bench`` in a process of its own (it imports mlserver, which the benchmark's process
must not: tritonclient's gRPC stubs clash with MLServer's); prints JSON. Alone:
``.venv/bin/python -m attrition_tools.bench.profile [model URI]``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

from attrition import config
from attrition.bundle import load
from attrition.contract.schema import encode
from attrition.contract.trust import Explain
from attrition_runtime import contract
from attrition_runtime.client import EXAMPLE_EMPLOYEE, v2_request
from attrition_runtime.monitoring import DriftWindow, Monitor
from attrition_runtime.settings import RuntimeSettings


def _mean_us(call, n: int) -> float:
    for _ in range(min(n, 50)):
        call()
    started = time.perf_counter()
    for _ in range(n):
        call()
    return round((time.perf_counter() - started) / n * 1e6, 1)


def profile(model_uri: str, n: int = 2000) -> dict[str, float]:
    """Mean microseconds of each step for one row."""
    import os

    from mlserver.types import InferenceRequest, InferenceResponse

    # Prometheus multiprocess mode, as in the server (the counters write to files there too).
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="attrition-profile-"))
    trust = load(model_uri)
    settings = RuntimeSettings()
    body = json.dumps(v2_request([EXAMPLE_EMPLOYEE]))
    payload = InferenceRequest.model_validate_json(body)
    columns = contract.decode_inputs(payload.inputs, settings.max_batch_rows)
    codes = encode(columns)
    scores = trust.score_codes(codes)
    window = DriftWindow(settings.drift_window, settings.drift_every, settings.drift_min_interval_s)
    monitor = Monitor("profile", "1", trust.drift_codes, window)
    monitor._feed_window = lambda codes, outliers: None  # the window's test runs off the request path
    import logging

    logging.getLogger("attrition.telemetry").disabled = True  # stdout is this script's JSON

    steps = {
        "parameters (explain, drift)": lambda: (
            contract.explain_mode(payload.parameters),
            contract.drift_requested(payload.parameters),
        ),
        "decode the 30 V2 inputs (MLServer codecs)": lambda: contract.decode_inputs(
            payload.inputs, settings.max_batch_rows
        ),
        "validate and encode (schema)": lambda: encode(columns),
        "score: probability and outlier (compiled)": lambda: trust.score_codes(codes),
        "encode the outputs (MLServer codecs)": lambda: contract.encode_scores(scores),
        "metrics, window and telemetry line": lambda: monitor.observe(
            None, time.perf_counter(), codes, scores, None, Explain.NONE
        ),
        "the response object": lambda: InferenceResponse(
            model_name="x", outputs=contract.encode_scores(scores)
        ),
    }
    out = {name: _mean_us(call, n) for name, call in steps.items()}
    out["total, ours"] = round(sum(out.values()), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    config.configure_mlflow()
    uri = args[0] if args else config.model_uri(RuntimeSettings().model_alias)
    print(json.dumps(profile(uri)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
