"""A calibration map after the compiled score.

scikit-learn's ``CalibratedClassifierCV(ensemble=False)`` keeps one fitted pipeline and one calibrator:
its probability is the calibrator applied to the pipeline's decision function (its probability when it
has none), sigmoid (Platt: ``expit(-(a * s + b))``) or isotonic (a non-decreasing piecewise-linear map,
clipped to the range it was fitted on). Read off as arrays and applied to the compiled response, it
gives ``CalibratedClassifierCV.predict_proba`` (tests/test_calibrated.py): the compiled scorer and the
attributions keep working on the pipeline underneath.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from attrition.serving.compiled.base import Unsupported

#: What the calibrator is applied to (scikit-learn's order of preference).
DECISION_FUNCTION, PREDICT_PROBA = "decision_function", "predict_proba"
METHODS = ("sigmoid", "isotonic")
#: What training may be asked for (``attrition train --calibration``): ``auto`` calibrates when the
#: out-of-fold ECE calls for it (attrition.training.calibration), a method always, ``off`` never.
SETTINGS = ("auto", *METHODS, "off")


def is_calibrated(classifier: object) -> bool:
    return type(classifier).__name__ == "CalibratedClassifierCV"


def base_pipeline(classifier: object) -> object:
    """The fitted pipeline whose score a calibrated classifier maps (the classifier itself if none)."""
    if not is_calibrated(classifier):
        return classifier
    return _single(classifier).estimator


def _single(classifier):
    if len(classifier.calibrated_classifiers_) != 1:
        raise Unsupported("calibration with ensemble=True (one pipeline and calibrator per fold)")
    return classifier.calibrated_classifiers_[0]


def compile_calibration(classifier: object) -> dict[str, np.ndarray]:
    """A fitted ``CalibratedClassifierCV(ensemble=False)`` -> its calibration map, as arrays."""
    inner = _single(classifier)
    (calibrator,) = inner.calibrators
    response = DECISION_FUNCTION if hasattr(inner.estimator, DECISION_FUNCTION) else PREDICT_PROBA
    kind = type(calibrator).__name__
    if kind == "_SigmoidCalibration":
        parameters = {
            "calibration_a": np.array(float(calibrator.a_)),
            "calibration_b": np.array(float(calibrator.b_)),
        }
        method = "sigmoid"
    elif kind == "IsotonicRegression":
        if calibrator.out_of_bounds != "clip" or not calibrator.increasing_:
            raise Unsupported("an isotonic calibrator that does not clip or is not increasing")
        parameters = {"calibration_x": calibrator.X_thresholds_, "calibration_y": calibrator.y_thresholds_}
        method = "isotonic"
    else:
        raise Unsupported(f"calibrator {kind}")
    return {
        "calibration_method": np.array(method),
        "calibration_response": np.array(response),
        **{name: np.asarray(value, dtype=np.float64) for name, value in parameters.items()},
    }


def method_of(arrays: dict[str, np.ndarray]) -> str | None:
    """``sigmoid``, ``isotonic``, or None for arrays without a calibration map."""
    return str(arrays["calibration_method"]) if "calibration_method" in arrays else None


def response_of(arrays: dict[str, np.ndarray]) -> str:
    return str(arrays["calibration_response"])


def calibrate(arrays: dict[str, np.ndarray], score: np.ndarray) -> np.ndarray:
    """The calibrated probability of leaving for the pipeline's score (see ``response_of``)."""
    if method_of(arrays) == "sigmoid":
        probability = expit(-(float(arrays["calibration_a"]) * score + float(arrays["calibration_b"])))
    else:
        x, y = arrays["calibration_x"], arrays["calibration_y"]
        probability = np.interp(np.clip(score, x[0], x[-1]), x, y)
    # As CalibratedClassifierCV does: a probability a hair above 1 is 1.
    return np.where((probability > 1.0) & (probability <= 1.0 + 1e-5), 1.0, probability)
