"""Batch throughput: rows per second scoring synthetic employees on local Spark through
``attrition.batch.score_table``, beside the pandas path of ``attrition predict`` on the same rows.

The rows are the IBM data set resampled with replacement (seeded), with fresh EmployeeNumbers,
written as one Parquet file (row groups of 128 Ki rows, so Spark can split it across cores).

- **spark**: ``score_table`` end to end on ``local[cores]``: read, schema checks, scoring through
  ``mlflow.pyfunc.spark_udf``, writing scored rows and rejects, the counts, the drift test on its
  10,000-row sample and the MLflow run. Timed warm (after a first call on the 1,470 original rows
  has started the Python workers and imported the model code in them, which that first call's time
  shows).
- **spark UDF only**: the same rows read, checked and scored through the UDF into Spark's no-op
  sink (no outputs written, no rejects pass, no report).
- **pandas**: what ``attrition predict`` does between reading and writing the CSV, in this process
  (one core): ``encode`` and ``TrustBundle.score_codes`` on the whole frame.

Part of ``make bench`` (a full run; the quick smoke run leaves it out: Spark's start alone takes longer
than the rest), and runnable alone: ``.venv/bin/python -m attrition_tools.bench.spark [--rows N]``. It
uses the MLflow store configured as for ``attrition`` and trains a first bundle there if it has none.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the Makefile: one BLAS thread per process


def synthetic_rows(rows: int, seed: int = 0) -> pd.DataFrame:
    """The data set resampled with replacement to ``rows`` rows, EmployeeNumber made unique."""
    from attrition.training import data

    raw = data.load_raw()
    picked = np.random.default_rng(seed).integers(0, len(raw), rows)
    frame = raw.iloc[picked].reset_index(drop=True)
    frame["EmployeeNumber"] = np.arange(1, rows + 1)
    return frame


def measure(rows: int = 1_000_000, cores: int = 2, memory: str = "2g", seed: int = 0) -> dict:
    """Score ``rows`` synthetic rows on local Spark (``cores`` cores) and with pandas; rows/second."""
    from attrition import config, registry
    from attrition.bundle import load
    from attrition.contract.schema import FEATURES, frame_codes
    from attrition_tools.serve import ensure_model

    config.configure_mlflow()
    uri = registry.pin(ensure_model(progress=lambda _: None)).uri
    frame = synthetic_rows(rows, seed)
    spark_run = _on_spark(frame, uri, cores, memory)
    report = spark_run.pop("report")
    assert report.rows_scored == rows, report.summary()

    bundle = load(uri)
    start = time.perf_counter()
    scored = bundle.score_codes(frame_codes(frame.loc[:, list(FEATURES)]))
    pandas_s = time.perf_counter() - start
    assert len(scored["probability"]) == rows
    return {
        "rows": rows,
        "model_uri": uri,
        "spark": {
            "cores": cores,
            "driver_memory": memory,
            "input_partitions": spark_run["partitions"],
            "seconds": round(spark_run["spark_s"], 2),
            "rows_per_s": round(rows / spark_run["spark_s"]),
            "udf_only_seconds": round(spark_run["udf_s"], 2),
            "udf_only_rows_per_s": round(rows / spark_run["udf_s"]),
            "first_call_seconds_1470_rows": round(spark_run["warmup_s"], 2),
            "drift": f"{report.drift.method} on {report.drift.rows} rows: is_drift={report.drift.is_drift}",
            "run_id": report.run_id,
        },
        "pandas": {"cores": 1, "seconds": round(pandas_s, 2), "rows_per_s": round(rows / pandas_s)},
        "spark_over_pandas": round(pandas_s / spark_run["spark_s"], 2),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "pyspark": spark_run["spark_version"],
            "java": f"{spark_run['java_version']} ({os.environ.get('JAVA_HOME', '')})",
            "mlflow": version("mlflow"),
            "scikit-learn": version("scikit-learn"),
        },
    }


def _on_spark(frame, uri: str, cores: int, memory: str) -> dict:
    """score_table on the rows written as Parquet (after a warm-up on the data set), then the UDF alone."""
    from attrition import batch
    from attrition.training import data

    with tempfile.TemporaryDirectory(prefix="attrition-spark-bench-") as tmp:
        source = Path(tmp) / "employees.parquet"
        frame.to_parquet(source, index=False, row_group_size=128 * 1024)
        warmup = Path(tmp) / "warmup.parquet"
        data.load_raw().to_parquet(warmup, index=False)
        spark = batch.local_spark(cores=cores, memory=memory, app_name="attrition-spark-bench")
        try:
            start = time.perf_counter()
            batch.score_table(spark, str(warmup), uri, run_name="spark-bench-warmup")
            warmup_s = time.perf_counter() - start
            start = time.perf_counter()
            report = batch.score_table(spark, str(source), uri, run_name="spark-bench")
            spark_s = time.perf_counter() - start
            return {
                "report": report,
                "warmup_s": warmup_s,
                "spark_s": spark_s,
                "udf_s": _udf_only(spark, str(source), uri),
                "partitions": spark.read.parquet(str(source)).rdd.getNumPartitions(),
                "spark_version": spark.version,
                "java_version": spark.sparkContext._jvm.System.getProperty("java.version"),
            }
        finally:
            spark.stop()


def _udf_only(spark, source: str, uri: str) -> float:
    """Seconds to read, check and score the rows through the UDF into a no-op sink: no writes, no
    rejects pass, no report (where score_table's time goes)."""
    import mlflow
    from pyspark.sql import functions as F

    from attrition import batch

    frame = spark.read.parquet(source)
    valid = frame.filter(batch.fits_schema(frame))
    udf = mlflow.pyfunc.spark_udf(spark, uri, result_type=batch.RESULT_TYPE, env_manager="local")
    scored = valid.select(udf(F.struct(*batch.feature_columns(valid))).alias("score"))
    start = time.perf_counter()
    scored.select("score.*").write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    command = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    command.add_argument("--rows", type=int, default=1_000_000)
    command.add_argument("--cores", type=int, default=2)
    command.add_argument("--memory", default="2g", help="Spark driver memory (default: %(default)s)")
    command.add_argument("--json", help="also write the result to this file")
    args = command.parse_args(argv)
    result = measure(args.rows, args.cores, args.memory)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    spark, pandas_ = result["spark"], result["pandas"]
    print(
        f"\n| path | cores | {result['rows']:,} rows | rows/s |\n| --- | --- | --- | --- |\n"
        f"| Spark score_table (local) | {spark['cores']} | {spark['seconds']} s | {spark['rows_per_s']:,} |\n"
        f"| Spark UDF only | {spark['cores']} | {spark['udf_only_seconds']} s | "
        f"{spark['udf_only_rows_per_s']:,} |\n"
        f"| pandas (attrition predict) | 1 | {pandas_['seconds']} s | {pandas_['rows_per_s']:,} |",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
