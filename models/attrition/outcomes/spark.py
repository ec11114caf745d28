"""The outcomes report on Spark, for a workforce-sized log: Spark scans the Delta log and does the
join (the latest prediction before each outcome's date, within the horizon, by a window function);
the joined rows (one per outcome) and four columns of the log come to the driver, where the same
``report`` code computes the metrics, so both engines give the same numbers on the same rows.

The outcomes are read, checked and hashed on the driver: the secret never reaches the executors.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from attrition.outcomes.join import LOG_FIELDS, ORDER, Joined
from attrition.outcomes.outcomes_file import check_outcomes, keyed, read_outcomes
from attrition.outcomes.report import Settings, build_report

#: The log's columns the monthly estimates need.
MONTH_FIELDS = ["model_name", "model_version", "timestamp", "probability", "prediction"]


def read_log(spark: SparkSession, source: str) -> DataFrame:
    """A catalog table by name, or a Delta folder. Without the Delta jars (local Spark), the
    folder's current snapshot is read as the Parquet files delta-rs lists for it."""
    if "/" not in source:
        return spark.table(source)
    try:
        return spark.read.format("delta").load(source)
    except Exception:  # no Delta data source on this Spark: the same snapshot, file by file
        from deltalake import DeltaTable

        return spark.read.parquet(*DeltaTable(source).file_uris())


def read_outcomes_any(spark: SparkSession, source: str) -> pd.DataFrame:
    """An outcomes table by name (``catalog.schema.table``), else a CSV or Parquet file."""
    if "/" not in source and not source.endswith((".csv", ".parquet")):
        return check_outcomes(spark.table(source).select("employee_id", "left", "date").toPandas(), source)
    return read_outcomes(source)


def join_on_spark(spark: SparkSession, log: DataFrame, outcomes: pd.DataFrame, horizon_days: int) -> Joined:
    """``outcomes`` keyed, as for ``join.join_outcomes``; the same rule, ties broken the same way."""
    frame = outcomes.assign(outcome_id=range(len(outcomes)), date=outcomes["date"].dt.tz_convert("UTC"))
    right = spark.createDataFrame(frame[["outcome_id", "entity_key", "left", "date"]])
    left = log.drop("date").withColumnRenamed("entity_key", "log_key")
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
    """The report ``attrition outcomes report`` prints, with the join done by Spark."""
    from attrition.outcomes.mlflow_run import training_baselines

    spark.conf.set("spark.sql.session.timeZone", "UTC")  # timestamps come back to pandas as UTC
    log = read_log(spark, log_source)
    outcomes = keyed(read_outcomes_any(spark, outcomes_source))
    joined = join_on_spark(spark, log, outcomes, settings.horizon_days)
    months = _utc(log.select(*MONTH_FIELDS).toPandas(), "timestamp")
    baselines = training_baselines(months) if baselines is None else baselines
    return build_report(months, outcomes, settings, baselines, joined=joined)


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
