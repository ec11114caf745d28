"""Does the model's probability mean what it says? CBPE's estimates are only as good as the
calibration, so training records it (a reliability table and the expected calibration error, ECE, on
the held-out split) and calibrates when the out-of-fold probabilities on the training split call for
it (ECE above ``ECE_TOLERANCE``), with scikit-learn's ``CalibratedClassifierCV``.

``ensemble=False``: one pipeline fitted on the whole training split and one calibrator fitted on its
out-of-fold scores, so the compiled scorer serves the pipeline and applies the map after it
(``attrition.serving.compiled.calibration``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from attrition.outcomes.metrics import calibration_table, expected_calibration_error
from attrition.serving.compiled.calibration import DECISION_FUNCTION, SETTINGS

#: Above this out-of-fold ECE, the probabilities are too far from observed rates for CBPE.
ECE_TOLERANCE = 0.05
#: What ``auto`` calibrates with: Platt scaling fits two parameters, sound on ~1,200 training rows;
#: isotonic regression overfits on fewer than about a thousand rows (scikit-learn's user guide).
AUTO_METHOD = "sigmoid"


def out_of_fold_ece(y_train: np.ndarray, oof_probability: np.ndarray) -> float:
    return expected_calibration_error(calibration_table(y_train, oof_probability, resamples=1))


def choose_method(setting: str, oof_ece: float) -> str | None:
    """The calibration method to fit (None: serve the model's own probabilities)."""
    if setting not in SETTINGS:
        raise ValueError(f"calibration: expected one of {', '.join(SETTINGS)}, got {setting!r}")
    if setting == "auto":
        return AUTO_METHOD if oof_ece > ECE_TOLERANCE else None
    return None if setting == "off" else setting


def fit_calibrated(
    build: Callable[[], Pipeline], X: pd.DataFrame, y: pd.Series, method: str, cv: StratifiedKFold
) -> tuple[CalibratedClassifierCV, np.ndarray]:
    """The calibrated classifier, and its out-of-fold probabilities: the calibrator applied to the
    out-of-fold scores it was fitted on (same folds, same seeded estimators), for the threshold."""
    calibrated = CalibratedClassifierCV(build(), method=method, cv=cv, ensemble=False, n_jobs=2)
    calibrated.fit(X, y)
    inner = calibrated.calibrated_classifiers_[0]
    response = DECISION_FUNCTION if hasattr(inner.estimator, DECISION_FUNCTION) else "predict_proba"
    scores = cross_val_predict(build(), X, y, cv=cv, method=response, n_jobs=2)
    if scores.ndim == 2:
        scores = scores[:, 1]
    return calibrated, inner.calibrators[0].predict(scores)


def calibration_record(
    y_train: np.ndarray,
    oof_probability: np.ndarray,
    y_test: np.ndarray,
    test_probability: np.ndarray,
    method: str | None = None,
    uncalibrated_test_probability: np.ndarray | None = None,
) -> dict:
    """What the bundle keeps: held-out ECE and reliability table of the served probabilities, the
    model's out-of-fold ECE and the verdict, and the calibration fitted (``method``, None if none)."""
    oof_ece = out_of_fold_ece(y_train, oof_probability)
    table = calibration_table(y_test, test_probability)
    record = {
        "oof_ece": oof_ece,
        "test_ece": expected_calibration_error(table),
        "tolerance": ECE_TOLERANCE,
        "needs_calibration": bool(oof_ece > ECE_TOLERANCE),
        "method": method,
        "test_reliability": table.replace({np.nan: None}).to_dict(orient="list"),
    }
    if uncalibrated_test_probability is not None:
        uncalibrated = calibration_table(y_test, uncalibrated_test_probability)
        record["test_ece_uncalibrated"] = expected_calibration_error(uncalibrated)
    return record
