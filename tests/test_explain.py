"""Attributions summed back to the 30 original features, for both explainer paths."""

from __future__ import annotations

import pytest
from alibi.explainers import KernelShap, TreeShap

from attrition.backends.alibi import explain
from attrition.contract.schema import FEATURES, to_codes, validate_features
from attrition.serving.attributions import background_rows
from attrition.training import data
from attrition.training.search import Candidate, split

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def splits():
    X, y = data.load()
    return split(X, y)


def test_tree_shap_groups_one_hot_columns_back_to_features(splits):
    X_train, X_test, y_train, _ = splits
    forest = (
        Candidate("random_forest", {"max_depth": 6, "levels_as_categories": True})
        .build()
        .fit(X_train, y_train)
    )
    codes = to_codes(validate_features(X_train))
    explainer = explain.fit_attributions(forest, codes)
    assert isinstance(explainer, TreeShap)
    rows = validate_features(X_test.head(5))
    explanations = explain.attributions(explainer, forest, to_codes(rows))
    probability = forest.predict_proba(rows)[:, 1]
    for explanation, p in zip(explanations, probability, strict=True):
        assert list(explanation["attributions"]) == list(FEATURES)
        assert explanation["scale"] == "probability"
        # Path-dependent TreeShap adds up: base value plus attributions is the forest's output.
        assert explanation["base_value"] + sum(explanation["attributions"].values()) == pytest.approx(
            p,
            abs=1e-4,  # attributions are rounded to 6 decimals, trees split in float32
        )


def test_kernel_shap_on_the_log_odds_is_chosen_for_linear_models(splits):
    X_train, X_test, y_train, _ = splits
    linear = Candidate("logistic_regression", {"C": 0.3}).build().fit(X_train, y_train)
    explainer = explain.fit_attributions(linear, background_rows(to_codes(validate_features(X_train))))
    assert isinstance(explainer, KernelShap)
    rows = validate_features(X_test.head(3))
    explanations = explain.attributions(explainer, linear, to_codes(rows))
    log_odds = linear.decision_function(rows)
    for explanation, logit in zip(explanations, log_odds, strict=True):
        assert explanation["method"] == "KernelShap" and explanation["scale"] == "log-odds"
        assert list(explanation["attributions"]) == list(FEATURES)
        # KernelShap's values add up (its efficiency constraint): base value + attributions = the logit.
        total = explanation["base_value"] + sum(explanation["attributions"].values())
        assert total == pytest.approx(logit, abs=1e-4)  # 30 values rounded to 6 decimals
