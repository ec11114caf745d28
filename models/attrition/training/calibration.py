"""Does the model's probability mean what it says? CBPE's estimates are only as good as the
calibration, so training records it: a reliability table and the expected calibration error (ECE) on
the held-out split, and whether the out-of-fold probabilities on the training split call for
recalibration (ECE above ``ECE_TOLERANCE``)."""

from __future__ import annotations

import numpy as np

from attrition.outcomes.metrics import calibration_table, expected_calibration_error

#: Above this out-of-fold ECE, the probabilities are too far from observed rates for CBPE.
ECE_TOLERANCE = 0.05


def calibration_record(
    y_train: np.ndarray, oof_probability: np.ndarray, y_test: np.ndarray, test_probability: np.ndarray
) -> dict:
    """What the bundle keeps: held-out ECE and reliability table, out-of-fold ECE and the verdict."""
    oof_ece = expected_calibration_error(calibration_table(y_train, oof_probability, resamples=1))
    table = calibration_table(y_test, test_probability)
    return {
        "oof_ece": oof_ece,
        "test_ece": expected_calibration_error(table),
        "tolerance": ECE_TOLERANCE,
        "needs_calibration": bool(oof_ece > ECE_TOLERANCE),
        "test_reliability": table.replace({np.nan: None}).to_dict(orient="list"),
    }
