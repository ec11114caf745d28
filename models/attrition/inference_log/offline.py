"""Scores made outside the server go into the same inference log: ``attrition predict --log`` and
``attrition score-table --log`` append one commit per run, with the same hashed keys, so the outcomes
report joins batch and online answers alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pandas as pd

from attrition import config
from attrition.inference_log import table
from attrition.inference_log.keys import ENTITY_COLUMNS, hash_entities
from attrition.inference_log.writer import request_rows, to_arrow


def entity_column(frame: pd.DataFrame) -> str | None:
    """The column that holds employee ids (``employee_id``, else ``EmployeeNumber``), if any."""
    return next((name for name in ENTITY_COLUMNS if name in frame.columns), None)


def append_scores(
    location: str,
    scores: pd.DataFrame,
    entities: Sequence | None,
    model_version: str,
    trust_backend: str,
    request_id: str | None = None,
    is_drift: bool | None = None,
    storage_options: dict[str, str] | None = None,
) -> int:
    """Append scored rows (columns probability, prediction, outlier_score, is_outlier) as one run:
    ``request_id`` (default: a new UUID) names the run, ``row_index`` its rows. Returns the rows."""
    keys = hash_entities(entities) if entities is not None else [None] * len(scores)
    rows = request_rows(
        request_id or str(uuid.uuid4()),
        keys,
        config.MODEL_NAME,
        model_version,
        trust_backend,
        scores["probability"].astype(float).tolist(),
        scores["prediction"].astype(str).tolist(),
        scores["outlier_score"].astype(float).tolist(),
        scores["is_outlier"].astype(bool).tolist(),
        is_drift,
    )
    table.append(location, to_arrow([rows]), table.storage_options(location, storage_options))
    return len(scores)


def registered_trust_backend(version: str | None) -> str:
    """The trust backend a registered version was trained with (its ``trust_backend`` tag)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if not version:
        return "unknown"
    try:
        return (
            MlflowClient().get_model_version(config.MODEL_NAME, version).tags.get("trust_backend", "unknown")
        )
    except MlflowException:
        return "unknown"


def append_scored_table(location: str, spark, report) -> int:
    """The rows a ``score-table`` run wrote (its ``run_id``), with their employee ids when the table
    has an id column, as one commit named by the run id."""
    from pyspark.sql import functions as F

    from attrition import batch
    from attrition.batch.locations import read

    kind, colon, path = report.scored_output.partition(":")  # how a Location prints: "parquet:/d/x"
    at = (
        batch.Location(path, kind)
        if colon and kind in batch.FORMATS
        else batch.Location(report.scored_output)
    )
    written = read(spark, at)
    entity = entity_column(written.limit(0).toPandas())
    columns = ["probability", "prediction", "outlier_score", "is_outlier", *([entity] if entity else [])]
    scores = written.filter(F.col("run_id") == report.run_id).select(*columns).toPandas()
    entities = scores[entity].tolist() if entity else None
    version = report.model_version or report.model_uri
    drift = report.drift.is_drift if report.drift.tested else None
    trust = registered_trust_backend(report.model_version)
    return append_scores(location, scores, entities, str(version), trust, report.run_id, drift)
