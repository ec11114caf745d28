"""Batch scoring on Spark (``attrition score-table``), in steps: the Spark session and its Java
(``spark``), the row checks (``rows``), where tables are read and written (``locations``), the job
(``job``) and its report (``report``). Importing it imports no pyspark."""

from attrition.batch.job import OUTPUTS, PROVENANCE, RESULT_TYPE, Plan, score_table
from attrition.batch.locations import FORMATS, WRITE_MODES, Location, locate
from attrition.batch.report import DRIFT_SAMPLE_ROWS, BatchReport, DriftSummary, drift_test
from attrition.batch.rows import REJECT_REASON, check_columns, feature_columns, fits_schema, reject_reason
from attrition.batch.spark import SPARK_EXTRA_HINT, java_home, local_spark

__all__ = [
    "DRIFT_SAMPLE_ROWS",
    "FORMATS",
    "OUTPUTS",
    "PROVENANCE",
    "REJECT_REASON",
    "RESULT_TYPE",
    "SPARK_EXTRA_HINT",
    "WRITE_MODES",
    "BatchReport",
    "DriftSummary",
    "Location",
    "Plan",
    "check_columns",
    "drift_test",
    "feature_columns",
    "fits_schema",
    "java_home",
    "local_spark",
    "locate",
    "reject_reason",
    "score_table",
]
