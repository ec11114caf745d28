"""The outcomes report on Spark, for a workforce-sized log. What runs where:

- executors: the scan of the Delta log; the join (the latest prediction before each outcome's date,
  within the horizon, by a window function); CBPE per model version and month
  (``groupBy().applyInPandas`` calling ``report.logged_month``, the local command's own function),
  one small row per group;
- driver: the outcomes (read, checked and hashed there: the secret never reaches the executors),
  the joined rows (one per joined outcome, so never more rows than the outcomes the driver already
  holds) and the per-month rows; there the same ``report`` code computes the realised metrics and
  their bootstrap intervals, so both engines give the same numbers on the same rows.
"""

from __future__ import annotations

import json

import pandas as pd
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from attrition.outcomes.join import LOG_FIELDS, ORDER, Joined, month
from attrition.outcomes.outcomes_file import check_outcomes, keyed, read_outcomes
from attrition.outcomes.report import Settings, build_report, logged_month

#: The Spark data source the log is read with (Databricks has it; local Spark has not).
LOG_FORMAT = "delta"
#: Spark's error class for a data source it cannot find (e.g. no Delta jars on local Spark).
NO_DATA_SOURCE = "DATA_SOURCE_NOT_FOUND"
#: Spark's errors on a read: captured or Spark Connect errors, and JVM errors as Py4J hands them.
SPARK_ERRORS = (PySparkException, Py4JJavaError)


def read_log(spark: SparkSession, source: str) -> DataFrame:
    """A catalog table by name, or a Delta folder. Only when this Spark has no Delta data source
    (local Spark) is the folder's current snapshot read as the Parquet files delta-rs lists for it;
    any other error (no table there, access denied) is raised naming the location."""
    from deltalake.exceptions import DeltaError

    try:
        if "/" not in source:
            return spark.table(source)
        try:
            return spark.read.format(LOG_FORMAT).load(source)
        except SPARK_ERRORS as exc:
            if not _no_data_source(exc):
                raise
        from deltalake import DeltaTable

        return spark.read.parquet(*DeltaTable(source).file_uris())
    except (*SPARK_ERRORS, DeltaError) as exc:
        raise LookupError(f"cannot read the inference log at {source}: {_first_line(exc)}") from exc


def _no_data_source(exc: Exception) -> bool:
    """Whether Spark failed because it has no such data source, and for no other reason."""
    if isinstance(exc, PySparkException):
        return exc.getErrorClass() == NO_DATA_SOURCE
    java = exc.java_exception  # Py4JJavaError: classic Spark raises SparkClassNotFoundException
    return java.getClass().getName() == "org.apache.spark.SparkClassNotFoundException" and (
        java.getErrorClass() == NO_DATA_SOURCE
    )


def _first_line(exc: Exception) -> str:
    """The cause in one line (Py4J's own first line names only the Java call that failed)."""
    text = str(exc.java_exception.toString()) if isinstance(exc, Py4JJavaError) else str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0]


def read_outcomes_any(spark: SparkSession, source: str) -> pd.DataFrame:
    """An outcomes table by name (``catalog.schema.table``), else a CSV or Parquet file."""
    if "/" not in source and not source.endswith((".csv", ".parquet")):
        return check_outcomes(spark.table(source).select("employee_id", "left", "date").toPandas(), source)
    return read_outcomes(source)


def join_on_spark(spark: SparkSession, log: DataFrame, outcomes: pd.DataFrame, horizon_days: int) -> Joined:
    """``outcomes`` keyed, as for ``join.join_outcomes``; the same rule, ties broken the same way."""
    frame = outcomes.assign(outcome_id=range(len(outcomes)), date=outcomes["date"].dt.tz_convert("UTC"))
    right = spark.createDataFrame(frame[["outcome_id", "entity_key", "left", "date"]])
    left = log.select(F.col("entity_key").alias("log_key"), *ORDER[1:], *LOG_FIELDS)  # as join.py keeps
    on = (
        (left["log_key"] == right["entity_key"])
        & (left["timestamp"] < right["date"])
        & (left["timestamp"] >= right["date"] - F.expr(f"INTERVAL {int(horizon_days)} DAYS"))
    )
    candidates = right.join(left, on, "inner")
    latest = Window.partitionBy("outcome_id").orderBy(*[F.col(c).desc() for c in ORDER])
    picked = candidates.withColumn("rank", F.row_number().over(latest)).where("rank = 1")
    rows = _utc(picked.select("entity_key", "date", "left", *LOG_FIELDS).toPandas(), "date", "timestamp")
    return Joined(rows, len(outcomes) - len(rows))


def report_on_spark(
    spark: SparkSession,
    log_source: str,
    outcomes_source: str,
    settings: Settings,
    baselines: dict[str, float] | None = None,
) -> dict:
    """The report ``attrition outcomes report`` prints, with the join and CBPE done by Spark."""
    from attrition.outcomes.mlflow_run import training_baselines

    spark.conf.set("spark.sql.session.timeZone", "UTC")  # timestamps come back to pandas as UTC
    log = read_log(spark, log_source)
    outcomes = keyed(read_outcomes_any(spark, outcomes_source))
    joined = join_on_spark(spark, log, outcomes, settings.horizon_days)
    if baselines is None:
        baselines = training_baselines(log.select("model_name", "model_version").distinct().toPandas())
    return build_report(None, outcomes, settings, baselines, joined=joined, months=logged_months(log))


def logged_months(log: DataFrame) -> list[dict]:
    """``report.logged_months`` on the executors: one group per model version and calendar month
    (UTC, the session's time zone), each sent back as one JSON string (so the entry's fields stay
    defined once, in ``report.logged_month``), in the local command's (version, month) order."""
    groups = log.select(*LOG_FIELDS).groupBy(
        "model_version", F.date_trunc("month", "timestamp").alias("start")
    )
    entries = groups.applyInPandas(_logged_month, schema="entry string").collect()
    found = [json.loads(row.entry) for row in entries]
    return sorted(found, key=lambda entry: (entry["model_version"], entry["month"]))


def _logged_month(key: tuple, rows: pd.DataFrame) -> pd.DataFrame:
    """Runs on an executor, on one month's rows; the month's label comes from ``join.month``."""
    version = key[0]
    when = month(pd.to_datetime(rows["timestamp"]).iloc[:1]).iloc[0]
    return pd.DataFrame({"entry": [json.dumps(logged_month(version, when, rows))]})


def _utc(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Spark hands timestamps to pandas as naive values in the session time zone (UTC here)."""
    for column in columns:
        frame[column] = pd.to_datetime(frame[column]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    return frame


def estimate_scored(scored: DataFrame) -> dict[str, float]:
    """CBPE over a scored table (score-table's batch report). The expected ROC AUC needs every
    probability in order, so the probability and the verdict come to the driver (9 bytes a row)."""
    from attrition.contract.schema import POSITIVE_LABEL
    from attrition.outcomes import cbpe

    rows = scored.select("probability", (F.col("prediction") == POSITIVE_LABEL).alias("yes")).toPandas()
    estimate = cbpe.estimate(rows["probability"].to_numpy(float), rows["yes"].to_numpy(bool))
    return {name: float(estimate[name]) for name in cbpe.ESTIMATED}
