"""What a batch reports: counts, rejects per field and the bundle's drift test of the scored rows,
logged to MLflow as metrics and ``batch_report.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from attrition.batch.rows import feature_columns
from attrition.contract.schema import FEATURES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Tables with at most this many scored rows are drift-tested whole, larger ones on a uniform random
#: sample of exactly this many. The training reference holds ~1,200 rows, and a two-sample test's power
#: is bounded by its smaller sample: 10,000 rows already give 90% of the effective sample size of an
#: infinitely large table (n_ref * n / (n_ref + n)), and keep the test a second on the driver.
DRIFT_SAMPLE_ROWS = 10_000

DRIFT_SEED = 0


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


def drift_test(model_uri: str, features: pd.DataFrame) -> dict[str, Any]:
    """The bundle's own batch drift test on a pandas frame of features.

    The only call into the bundle's Python API in this module: adapt it here if that API changes.
    Returns ``tested`` (False below the bundle's minimum rows, with a ``note``), ``is_drift``,
    ``threshold``, ``drifted`` and ``p_values``.
    """
    from attrition.bundle import load
    from attrition.contract.schema import validate_features

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


def drift_summary(written: DataFrame, model_uri: str, rows: int, sample_rows: int, seed: int) -> DriftSummary:
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
