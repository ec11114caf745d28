"""What the Databricks jobs (databricks/*.py) set before anything else of ``attrition`` is imported:
``attrition.config`` reads the tracking URI and the model name when it is imported. Imports nothing of
the package itself for that reason."""

from __future__ import annotations

import os


def use_databricks(model_name: str, experiment: str | None = None) -> None:
    """MLflow on Databricks and the Unity Catalog model name (``catalog.schema.model``)."""
    os.environ.setdefault("MLFLOW_TRACKING_URI", "databricks")
    os.environ["ATTRITION_MODEL_NAME"] = model_name
    if experiment:
        os.environ["ATTRITION_EXPERIMENT"] = experiment


def run_on_cluster(model_name: str, experiment: str | None, command: list[str]) -> int:
    """``attrition <command>`` inside a Databricks job: the environment first, then the job's Spark
    session made active, so that the command's Spark work runs on the cluster, not on a local one."""
    use_databricks(model_name, experiment)
    from pyspark.sql import SparkSession

    from attrition import cli

    SparkSession.builder.getOrCreate()
    return cli.main(command)
