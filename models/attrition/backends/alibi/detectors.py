"""The alibi trust backend's detectors, fitted on the training split: feature drift (alibi-detect
TabularDrift) and a per-row outlier score (alibi-detect IForest). Both see validated features as
ordinal codes. Serving computes the same numbers without them (attrition.serving.drift and
attrition.serving.compiled); these are the reference the tests compare with, and what the book shows."""

from __future__ import annotations

import logging
from pathlib import Path

import joblib
import numpy as np
from alibi_detect.cd import TabularDrift
from alibi_detect.od import IForest
from alibi_detect.saving import load_detector, save_detector

from attrition.backends.open import FOREST_PARAMS
from attrition.contract.schema import CATEGORIES_PER_FEATURE, FEATURES
from attrition.contract.trust import (
    DRIFT_CORRECTION,
    DRIFT_P_VALUE,
    MIN_DRIFT_ROWS,
    OUTLIER_PERCENTILE,
    DriftReport,
)


def fit_drift(reference_codes: np.ndarray) -> TabularDrift:
    """K-S tests for numerics, Chi-squared for categoricals (their code count from the schema)."""
    return TabularDrift(
        reference_codes.astype("float64"),
        p_val=DRIFT_P_VALUE,
        categories_per_feature=dict(CATEGORIES_PER_FEATURE),
        correction=DRIFT_CORRECTION,
    )


def drift_report(detector: TabularDrift, codes: np.ndarray) -> DriftReport:
    if len(codes) < MIN_DRIFT_ROWS:
        raise ValueError(f"drift needs at least {MIN_DRIFT_ROWS} rows, got {len(codes)}")
    result = detector.predict(
        codes.astype("float64"), drift_type="batch", return_p_val=True, return_distance=True
    )
    data = result["data"]
    return DriftReport(
        is_drift=bool(data["is_drift"]),
        p_values=dict(zip(FEATURES, map(float, data["p_val"]), strict=True)),
        distances=dict(zip(FEATURES, map(float, data["distance"]), strict=True)),
        threshold=float(data["threshold"]),
        rows=len(codes),
    )


def fit_outlier(reference_codes: np.ndarray, seed: int = 0) -> IForest:
    # Its constructor warns that no threshold is set; infer_threshold sets it two lines below.
    logging.getLogger("alibi_detect.od.isolationforest").setLevel(logging.ERROR)
    detector = IForest(n_estimators=FOREST_PARAMS["n_estimators"])
    detector.isolationforest.set_params(random_state=seed)
    detector.fit(reference_codes)
    detector.infer_threshold(reference_codes, threshold_perc=OUTLIER_PERCENTILE)
    return detector


def outlier_scores(detector: IForest, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores (higher = more unusual) and flags (score above the training percentile)."""
    scores = detector.score(codes)
    return scores.astype("float64"), scores > detector.threshold


def save_drift(detector: TabularDrift, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)  # else alibi-detect warns that it creates it
    save_detector(detector, str(path))


def load_drift(path: Path) -> TabularDrift:
    return load_detector(str(path))


def save_outlier(detector: IForest, path: Path) -> None:
    # alibi-detect's save_detector needs TensorFlow for IForest; joblib needs nothing more.
    joblib.dump(detector, path)


def load_outlier(path: Path) -> IForest:
    return joblib.load(path)
