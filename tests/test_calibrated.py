"""Calibration at training: the compiled scorer with the calibration map after it against
scikit-learn's ``CalibratedClassifierCV`` (the source of truth), for every model family and both
maps, on all 1,470 rows; the attributions of a calibrated model; and when training calibrates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logit
from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from attrition.contract.schema import frame_codes, from_codes
from attrition.serving.attributions import CalibratedAttributions, LinearAttributions, TreeAttributions
from attrition.serving.compiled import CompiledClassifier, Unsupported, base_pipeline, compile_classifier
from attrition.serving.compiled.calibration import METHODS
from attrition.training import data
from attrition.training.calibration import ECE_TOLERANCE, choose_method, fit_calibrated
from attrition.training.search import search_space

pytestmark = pytest.mark.unit

SEED = 0
#: Measured: 0 for the linear model, <= 2e-14 for the forest under isotonic calibration.
TOLERANCE = 1e-12
#: One candidate of each family the search can choose.
FAMILIES = {c.family: c for c in reversed(search_space(quick=False))}


def _folds() -> StratifiedKFold:
    return StratifiedKFold(3, shuffle=True, random_state=SEED)


@pytest.fixture(scope="module")
def rows():
    X, y = data.load()
    return X, y, frame_codes(X)


@pytest.fixture(scope="module")
def calibrated(rows):
    """Every family under both maps, fitted once: {(family, method): CalibratedClassifierCV}."""
    X, y, _ = rows
    return {
        (family, method): CalibratedClassifierCV(
            candidate.build(SEED), method=method, cv=_folds(), ensemble=False
        ).fit(X, y)
        for family, candidate in FAMILIES.items()
        for method in METHODS
    }


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_compiled_calibrated_probability_equals_scikit_learn(calibrated, rows, family, method):
    _, _, codes = rows
    model = calibrated[family, method]
    compiled = CompiledClassifier(compile_classifier(model))
    expected = model.predict_proba(from_codes(codes))[:, 1]
    np.testing.assert_allclose(compiled.probability(codes), expected, rtol=0, atol=TOLERANCE)
    assert compiled.calibration == method
    # The map changed the probabilities: the test compares calibrated numbers, not the model's own.
    own = base_pipeline(model).predict_proba(from_codes(codes))[:, 1]
    assert np.abs(own - expected).max() > 1e-3


@pytest.mark.parametrize("family", ["logistic_regression", "random_forest", "hist_gradient_boosting"])
def test_sigmoid_attributions_add_up_to_the_served_log_odds(calibrated, rows, family):
    _, _, codes = rows
    model = calibrated[family, "sigmoid"]
    compiled = CompiledClassifier(compile_classifier(model))
    inner = (
        LinearAttributions(compiled, codes[:100])
        if compiled.linear
        else TreeAttributions(base_pipeline(model), compiled)
    )
    explainer = CalibratedAttributions(inner, compiled.arrays)
    sample = codes[:25]
    served_log_odds = logit(compiled.probability(sample))
    total = explainer.values(sample).sum(axis=1) + explainer.base_value
    np.testing.assert_allclose(total, served_log_odds, rtol=0, atol=1e-6)
    assert explainer.explain(sample[:1])[0]["scale"] == "log-odds"


def test_isotonic_attributions_say_they_explain_the_score_before_the_map(calibrated, rows):
    _, _, codes = rows
    compiled = CompiledClassifier(compile_classifier(calibrated["logistic_regression", "isotonic"]))
    explainer = CalibratedAttributions(LinearAttributions(compiled, codes[:100]), compiled.arrays)
    (explanation,) = explainer.explain(codes[:1])
    assert explanation["scale"] == "log-odds before isotonic calibration"
    total = sum(explanation["attributions"].values()) + explanation["base_value"]
    assert total == pytest.approx(float(compiled.logit(codes[:1])[0]), abs=1e-4)


def test_a_calibrator_per_fold_is_refused(rows):
    X, y, _ = rows
    ensemble = CalibratedClassifierCV(FAMILIES["logistic_regression"].build(SEED), cv=_folds()).fit(X, y)
    with pytest.raises(Unsupported, match="ensemble=True"):
        compile_classifier(ensemble)


def test_the_threshold_probabilities_are_those_the_calibrator_was_fitted_on(rows):
    """fit_calibrated's out-of-fold probabilities: refitting a sigmoid on the out-of-fold scores gives
    the fitted calibrator's parameters, and mapping them gives the returned probabilities."""
    X, y, _ = rows
    candidate = FAMILIES["logistic_regression"]
    model, served_oof = fit_calibrated(lambda: candidate.build(SEED), X, y, "sigmoid", _folds())
    scores = cross_val_predict(candidate.build(SEED), X, y, cv=_folds(), method="decision_function")
    refit = _SigmoidCalibration().fit(scores, y)
    (fitted,) = model.calibrated_classifiers_[0].calibrators
    assert (refit.a_, refit.b_) == pytest.approx((fitted.a_, fitted.b_), abs=1e-12)
    np.testing.assert_allclose(served_oof, refit.predict(scores), rtol=0, atol=1e-12)


def test_when_training_calibrates():
    assert choose_method("auto", ECE_TOLERANCE / 2) is None
    assert choose_method("auto", ECE_TOLERANCE * 2) == "sigmoid"
    assert choose_method("off", 0.5) is None
    assert choose_method("isotonic", 0.0) == "isotonic"
    with pytest.raises(ValueError, match="expected one of auto, sigmoid, isotonic, off, got 'platt'"):
        choose_method("platt", 0.0)
