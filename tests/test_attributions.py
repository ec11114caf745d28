"""The serving attributions (attrition.serving.attributions) against the alibi explainers they replace:
they must add up, be deterministic and thread-safe (MLServer explains from a thread pool), and say what
alibi's KernelShap / TreeShap say."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from alibi.explainers import KernelShap

from attrition.backends.alibi import explain
from attrition.contract.schema import FEATURES, from_codes, to_codes, validate_features
from attrition.serving.attributions import LinearAttributions, TreeAttributions, background_rows
from attrition.serving.compiled import CompiledClassifier, compile_classifier
from attrition.training import data
from attrition.training.search import Candidate, split

pytestmark = pytest.mark.unit

SEED = 0
#: Attributions are rounded to 6 decimals: 30 of them sum to within 30 * 5e-7 of the exact total.
ROUNDED_SUM = 1e-4
#: One unit of the 6th decimal (both sides round; measured difference before rounding: 0).
TREE_TOLERANCE = 1e-6 + 1e-12
#: LinearAttributions vs KernelShap of the log-odds (identity link): the same game, solved exactly by
#: both (an additive function); measured 5.0e-7, i.e. the rounding to 6 decimals.
MARGIN_TOLERANCE = 1e-6
#: LinearAttributions vs the alibi backend's KernelShap (log-odds, identity link, the same 100 background
#: rows, attrition.backends.alibi.explain.KERNEL_SAMPLES samples, attributions rounded to 6 decimals):
#: the game is additive, so KernelShap's regression is exact up to that rounding.
KERNEL_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def splits():
    X, y = data.load()
    X_train, X_test, y_train, _ = split(X, y, SEED)
    return X_train, y_train, to_codes(validate_features(X_train)), to_codes(validate_features(X_test))


# --- linear models: exact SHAP in log-odds ---------------------------------------------------------


@pytest.fixture(scope="module")
def linear(splits):
    X_train, y_train, train_codes, _ = splits
    model = Candidate("logistic_regression", {"C": 0.3}).build(SEED).fit(X_train, y_train)
    compiled = CompiledClassifier(compile_classifier(model))
    # The rows a bundle draws for its background, so that both explain from the same baseline.
    background = background_rows(train_codes, SEED)
    return model, compiled, background, LinearAttributions(compiled, background)


def _values(explanations: list[dict]) -> np.ndarray:
    return np.array([[e["attributions"][f] for f in FEATURES] for e in explanations])


def test_linear_attributions_add_up_to_the_models_logit(linear, splits):
    model, compiled, _, attributions = linear
    codes = splits[3]
    logit = model.decision_function(from_codes(codes))  # scikit-learn, not the compiled copy
    np.testing.assert_allclose(compiled.logit(codes), logit, rtol=0, atol=1e-9)
    explanations = attributions.explain(codes)
    assert len(explanations) == len(codes)
    for explanation, expected in zip(explanations, logit, strict=True):
        assert list(explanation["attributions"]) == list(FEATURES)
        assert (explanation["method"], explanation["scale"]) == ("LinearShap", "log-odds")
        total = explanation["base_value"] + sum(explanation["attributions"].values())
        assert total == pytest.approx(expected, abs=ROUNDED_SUM)


def test_linear_attributions_are_deterministic(linear, splits):
    """The same row gets the same explanation, alone, repeated or inside any batch."""
    attributions = linear[3]
    codes = splits[3][:10]
    first = attributions.explain(codes[3:4])[0]
    for _ in range(5):
        assert attributions.explain(codes[3:4])[0] == first
    assert attributions.explain(codes)[3] == first


def test_linear_attributions_are_kernel_shap_of_the_log_odds(linear, splits):
    """KernelShap on the model's log-odds, same background: the interventional SHAP values ours claim
    to be, exactly (the game is additive, so KernelShap's regression has no error to sample)."""
    model, _, background, attributions = linear
    codes = splits[3][:5]

    def log_odds(rows: np.ndarray) -> np.ndarray:
        margin = model.decision_function(from_codes(rows))
        return np.column_stack([-margin, margin])

    kernel = KernelShap(log_odds, link="identity", feature_names=list(FEATURES), seed=SEED)
    kernel.fit(background, summarise_background=False)
    result = kernel.explain(codes, nsamples=1000, silent=True)
    assert float(np.ravel(result.expected_value)[-1]) == pytest.approx(attributions.base_value, abs=1e-9)
    difference = np.abs(np.asarray(result.shap_values[-1]) - _values(attributions.explain(codes)))
    assert difference.max() <= MARGIN_TOLERANCE


def test_linear_attributions_agree_with_alibis_kernel_shap(linear, splits):
    """alibi's KernelShap as the alibi backend fits it (attrition.backends.alibi.explain: log-odds,
    identity link, the bundle's background) with its own sample count: the served values are what it
    estimates."""
    model, _, background, attributions = linear
    codes = splits[3][:5]
    kernel = explain.fit_attributions(model, background, SEED)
    theirs = _values(explain.attributions(kernel, model, codes))
    ours = _values(attributions.explain(codes))
    assert np.abs(theirs - ours).max() <= KERNEL_TOLERANCE


# --- tree ensembles: path-dependent TreeShap -------------------------------------------------------

TREE_CANDIDATES = [
    Candidate("random_forest", {"max_depth": 8, "min_samples_leaf": 3, "levels_as_categories": False}),
    Candidate(
        "hist_gradient_boosting", {"max_depth": None, "l2_regularization": 1.0, "levels_as_categories": False}
    ),
]
THREADS = 8


@pytest.fixture(scope="module", params=TREE_CANDIDATES, ids=lambda c: c.family)
def trees(request, splits):
    X_train, y_train, _, _ = splits
    model = request.param.build(SEED).fit(X_train, y_train)
    return model, TreeAttributions(model, CompiledClassifier(compile_classifier(model)))


def test_tree_attributions_are_deterministic(trees, splits):
    model, attributions = trees
    codes = splits[3][:THREADS]
    first = attributions.explain(codes)
    for _ in range(3):
        assert attributions.explain(codes) == first
    assert [attributions.explain(codes[i : i + 1])[0] for i in range(len(codes))] == first
    # The compiled preprocessing and scikit-learn's give the same explanation.
    assert TreeAttributions(model).explain(codes) == first


def test_tree_attributions_are_the_same_from_8_threads_at_once(trees, splits):
    """Each thread explains its own row at the same moment; each answer is that row's answer alone."""
    _, attributions = trees
    codes = splits[3][:THREADS]
    alone = [attributions.explain(codes[i : i + 1])[0] for i in range(THREADS)]
    start = threading.Barrier(THREADS)

    def explain_row(i: int) -> dict:
        start.wait(timeout=30)
        return attributions.explain(codes[i : i + 1])[0]

    for _ in range(3):
        with ThreadPoolExecutor(THREADS) as pool:
            assert list(pool.map(explain_row, range(THREADS))) == alone


def test_tree_attributions_equal_alibis_tree_shap(trees, splits):
    model, attributions = trees
    _, _, train_codes, test_codes = splits
    codes = test_codes[:20]
    ours = attributions.explain(codes)
    theirs = explain.attributions(explain.fit_attributions(model, train_codes, SEED), model, codes)
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine["scale"] == reference["scale"]
        assert mine["method"] == reference["method"] == "TreeShap"
        assert mine["base_value"] == pytest.approx(reference["base_value"], abs=1e-12)
        assert list(mine["attributions"]) == list(reference["attributions"]) == list(FEATURES)
        for feature in FEATURES:
            assert abs(mine["attributions"][feature] - reference["attributions"][feature]) <= TREE_TOLERANCE


def test_tree_attributions_add_up_to_the_raw_output(trees, splits):
    """Probability for a forest, log-odds for boosting: what the scale says."""
    model, attributions = trees
    codes = splits[3]
    features = from_codes(codes)
    raw = (
        model.predict_proba(features)[:, 1]
        if attributions.scale == "probability"
        else model.decision_function(features)
    )
    for explanation, expected in zip(attributions.explain(codes), raw, strict=True):
        total = explanation["base_value"] + sum(explanation["attributions"].values())
        assert total == pytest.approx(expected, abs=ROUNDED_SUM)
