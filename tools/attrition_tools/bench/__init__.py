"""The benchmark (``make bench``): what the full answer costs next to a bare MLServer serving the same
classifier, and in-process scoring.

One run on 127.0.0.1, servers one after the other (never two at once, always stopped):

1. in-process: validation and scoring (:meth:`TrustBundle.score_codes`) on 1 and 1,000 rows, the batch
   drift test on 100 rows, and attributions on 1 row;
2. *bare*: stock ``mlserver_mlflow.MLflowRuntime`` serving the bundle's classifier alone, exported as a
   plain MLflow sklearn model, with our server settings (settings.json, model-settings.json batching);
3. *ours*: :class:`attrition_tools.serve.Server` serving the bundle.

For each server, over REST (aiohttp, raw V2 JSON) and gRPC (``tritonclient.grpc.aio``): p50/p99 latency
and requests/s for 1- and 100-row requests at concurrency 1 and 8, and 1,000-row requests at
concurrency 1, each cell bounded by a request count and a time, whichever comes first; for ours also
``explain: true``; start to ready; peak RSS of the main process, each worker and their sum. Machines
are shared and noisy: only the ratios of one run, measured side by side, count.

Output: a table on stdout, ``latest.json`` (schema.Report) and ``latest.md`` in ``book/benchmark/``
(``--quick``, or ``ATTRITION_BENCH_QUICK=1``, is a smoke run with a few requests per cell, written to a
temp folder unless ``--out`` is given).
"""

from attrition_tools.bench.run import OUT_DIR, run
from attrition_tools.bench.schema import FULL, QUICK, SCHEMA, BenchSettings

__all__ = ["FULL", "OUT_DIR", "QUICK", "SCHEMA", "BenchSettings", "run"]
