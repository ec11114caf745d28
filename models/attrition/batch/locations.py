"""Where a batch reads and writes: catalog tables or Parquet/Delta paths, and the outputs named
beside the source."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SCORED_SUFFIX = "_scored"

REJECTS_SUFFIX = "_rejects"

FORMATS = ("parquet", "delta")

WRITE_MODES = ("overwrite", "append")


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


def locate(spark: SparkSession, source: str, format: str | None = None) -> Location:
    """A name with a ``/`` (or a URI scheme) is a path, anything else a catalog table."""
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {format!r}")
    if "/" not in source:
        return Location(source)
    if format is None:
        format = "delta" if _exists(spark, f"{source.rstrip('/')}/_delta_log") else "parquet"
    return Location(source, format)


def output(given: str | None, source: Location, suffix: str) -> Location:
    if given is None:
        return source.sibling(suffix)
    return Location(given, source.format or "parquet") if "/" in given else Location(given)


def read(spark: SparkSession, at: Location) -> DataFrame:
    from pyspark.errors import AnalysisException

    try:
        if at.is_path:
            return spark.read.format(at.format).load(at.name)
        return spark.table(at.name)
    except AnalysisException as exc:
        raise LookupError(f"cannot read {at}: {str(exc).splitlines()[0]}") from exc


def write(frame: DataFrame, at: Location, mode: str) -> None:
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
