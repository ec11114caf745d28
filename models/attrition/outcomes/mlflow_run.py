"""The report as an MLflow monitoring run (metrics, the per-month table, plots, the JSON), and the
training CV ROC AUC that each model version promised (its registered run's metric)."""

from __future__ import annotations

import logging

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from attrition import config
from attrition.outcomes.plots import calibration_figure, months_frame, performance_figure
from attrition.training.search import CV_METRIC

log = logging.getLogger(__name__)


def training_baselines(log_rows: pd.DataFrame) -> dict[str, float]:
    """Each logged (model name, version)'s training CV ROC AUC, from the registry; versions the
    registry does not know are left out (and never flagged)."""
    client = mlflow.MlflowClient()
    baselines = {}
    pairs = log_rows[["model_name", "model_version"]].drop_duplicates().itertuples(index=False)
    for name, version in pairs:
        try:
            run_id = client.get_model_version(name, str(version)).run_id
            value = client.get_run(run_id).data.metrics.get(CV_METRIC)
        except MlflowException as exc:
            log.warning("no training %s for %s version %s: %s", CV_METRIC, name, version, exc)
            continue
        if value is not None:
            baselines[str(version)] = float(value)
    return baselines


def log_monitoring_run(report: dict, run_name: str = "outcomes-report") -> str:
    """One run tagged ``monitoring=outcomes``; returns its id."""
    config.configure_mlflow()
    config.use_experiment()
    with mlflow.start_run(run_name=run_name, tags={"monitoring": "outcomes"}) as run:
        mlflow.log_params({k: report[k] for k in ("horizon_days", "margin")})
        counts = {k: report[k] for k in ("rows_joined", "unjoined", "outcomes")}
        mlflow.log_metrics({**counts, "flagged_months": len(report["flagged"])})
        for group in ("realised", "estimated"):
            values = {f"{group}_{k}": v for k, v in report[group].items() if isinstance(v, float)}
            mlflow.log_metrics(values)
        if report["ece"] is not None:
            mlflow.log_metric("realised_ece", report["ece"])
        if report["months"]:
            mlflow.log_table(months_frame(report), "outcomes/months.json")
            mlflow.log_figure(performance_figure(report, report["margin"]), "plots/realised_vs_estimated.png")
        mlflow.log_figure(calibration_figure(report), "plots/calibration.png")
        mlflow.log_dict(report, "outcomes/report.json")
        return run.info.run_id
