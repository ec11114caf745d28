"""The outcomes report: realised performance per model version and month (the month the prediction
was made), beside the performance CBPE estimated for that month from the log alone, and a flag on
every month whose realised ROC AUC is clearly below what training promised."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attrition.contract.schema import POSITIVE_LABEL
from attrition.outcomes import cbpe, metrics
from attrition.outcomes.join import DEFAULT_HORIZON_DAYS, Joined, join_outcomes, month

#: A month is flagged when the upper end of its realised ROC AUC interval lies below the training CV
#: ROC AUC minus this margin: the drop is then larger than the margin even at the interval's best.
ROC_AUC_MARGIN = 0.05


@dataclass(frozen=True)
class Settings:
    horizon_days: int = DEFAULT_HORIZON_DAYS
    margin: float = ROC_AUC_MARGIN
    resamples: int = metrics.BOOTSTRAP_RESAMPLES
    seed: int = 0


def window_report(joined: pd.DataFrame, settings: Settings) -> dict:
    """Realised metrics with intervals, the calibration table and its ECE, for joined rows."""
    y, p = joined["left"].to_numpy(), joined["probability"].to_numpy()
    table = metrics.calibration_table(y, p, settings.resamples, settings.seed)
    return {
        "realised": metrics.realised(y, p, settings.resamples, settings.seed),
        "calibration": table.to_dict(orient="records"),
        "ece": metrics.expected_calibration_error(table),
    }


def estimated(rows: pd.DataFrame) -> dict:
    """CBPE on logged rows (the probability and the prediction made at the bundle's threshold)."""
    return cbpe.estimate(rows["probability"].to_numpy(), rows["prediction"].eq(POSITIVE_LABEL).to_numpy())


#: Joined rows are put in this order before the bootstrap, so that the same rows give the same
#: intervals whichever engine joined them (pandas here, Spark in ``outcomes.spark``).
CANONICAL_ORDER = ["date", "entity_key", "timestamp", "left"]


def build_report(
    log: pd.DataFrame,
    outcomes: pd.DataFrame,
    settings: Settings,
    baselines: dict[str, float],
    joined: Joined | None = None,
) -> dict:
    """``outcomes`` keyed (``entity_key``, ``left``, ``date``); ``baselines`` maps a model version to
    its training CV ROC AUC (versions without one are never flagged). ``joined``: the join, when
    another engine did it (then ``log`` needs only the version, timestamp, probability and
    prediction columns)."""
    joined = joined or join_outcomes(log, outcomes, settings.horizon_days)
    rows = joined.rows.sort_values(CANONICAL_ORDER, kind="mergesort").reset_index(drop=True)
    report = {
        "rows_joined": len(rows),
        "unjoined": joined.unjoined,
        "outcomes": len(outcomes),
        "horizon_days": settings.horizon_days,
        "margin": settings.margin,
        **window_report(rows, settings),
        # On the joined rows themselves, so the two sit side by side on the same predictions.
        "estimated": estimated(rows),
        "months": _months(log, rows, settings, baselines),
    }
    report["flagged"] = [
        {key: entry[key] for key in ("model_version", "month", "baseline_roc_auc")}
        | {"roc_auc_high": entry["realised"]["roc_auc_high"]}
        for entry in report["months"]
        if entry["flagged"]
    ]
    return _plain(report)


def _months(log: pd.DataFrame, rows: pd.DataFrame, settings: Settings, baselines: dict) -> list[dict]:
    """One entry per model version and month that has logged predictions: CBPE on every prediction
    of the month (what is known before any label), realised metrics on those that got an outcome."""
    log_month = log.assign(month=month(log["timestamp"]))
    joined_month = rows.assign(month=month(rows["timestamp"]))
    entries = []
    for (version, when), logged in log_month.groupby(["model_version", "month"], sort=True):
        judged = joined_month[(joined_month["model_version"] == version) & (joined_month["month"] == when)]
        entry = {"model_version": str(version), "month": when, "rows_logged": len(logged)}
        entry |= {"rows_joined": len(judged), **window_report(judged, settings)}
        entry["estimated"] = estimated(logged)
        baseline = baselines.get(str(version))
        high = entry["realised"]["roc_auc_high"]
        entry["baseline_roc_auc"] = baseline
        entry["flagged"] = bool(
            baseline is not None and not math.isnan(high) and high < baseline - settings.margin
        )
        entries.append(entry)
    return entries


def _plain(value):
    """JSON-ready: numpy scalars to Python, NaN to None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def report_for(
    location: str, outcomes: pd.DataFrame, settings: Settings = Settings(), as_of: str | None = None
) -> dict:
    """The report on a log folder and an outcomes frame (as a file holds it), as the command builds
    it; with ``as_of``, only the outcomes known by that date (what the report says on that day)."""
    from attrition.inference_log import read
    from attrition.outcomes.mlflow_run import training_baselines
    from attrition.outcomes.outcomes_file import check_outcomes, keyed

    known = check_outcomes(outcomes)
    if as_of is not None:
        known = known[known["date"] <= pd.Timestamp(as_of, tz="UTC")]
    log = read(location)
    return build_report(log, keyed(known), settings, training_baselines(log))
