"""The compiled scorer against its sources of truth (scikit-learn for the classifier, alibi-detect's
IForest for the outlier score) on all 1,470 rows: serving trusts compiled.npz only because they agree,
for every candidate the hyperparameter search can choose."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import SVC

from attrition.backends import open as outliers
from attrition.backends.alibi import detectors
from attrition.contract.schema import CATEGORICAL, FEATURES, NUMERIC, from_codes, to_codes, validate_features
from attrition.serving.compiled import (
    CompiledClassifier,
    CompiledIsolationForest,
    Unsupported,
    compile_classifier,
    compile_isolation_forest,
)
from attrition.training import data
from attrition.training.features import preprocessor
from attrition.training.search import Candidate, search_space, split

pytestmark = pytest.mark.unit

SEED = 0
#: The documented bound (attrition.serving.compiled); measured: 0 for linear, <= 6e-16 for trees.
TOLERANCE = 1e-6
THRESHOLDS = (0.5, 0.3)


def _id(candidate: Candidate) -> str:
    return candidate.family + "[" + ",".join(f"{k}={v}" for k, v in candidate.params.items()) + "]"


#: The whole search, not a sample: a family or option the search can pick must compile exactly.
CANDIDATES = search_space(quick=False)


@pytest.fixture(scope="module")
def splits():
    X, y = data.load()
    X_train, _, y_train, _ = split(X, y, SEED)
    return X, X_train, y_train


@pytest.fixture(scope="module")
def all_rows(splits) -> tuple:
    """All 1,470 rows as the pipeline takes them and as the compiled scorer takes them."""
    features = validate_features(splits[0])
    return features, to_codes(features)


@pytest.fixture(scope="module")
def train_codes(splits) -> np.ndarray:
    return to_codes(validate_features(splits[1]))


@pytest.fixture(scope="module")
def unseen_codes(splits) -> np.ndarray:
    """Valid rows the data set never has: fractional levels (no one-hot column: all zeros, as
    handle_unknown="ignore" does), values beyond the training range, every category."""
    rng = np.random.default_rng(SEED)
    n = 2000
    codes = np.empty((n, len(FEATURES)))
    for i, name in enumerate(FEATURES):
        if name in CATEGORICAL:
            codes[:, i] = rng.integers(0, len(CATEGORICAL[name]), n)
            continue
        domain, seen = NUMERIC[name], splits[0][name]
        values = rng.uniform(seen.min() - 1, seen.max() * 1.5 + 1, n)
        whole = rng.random(n) < 0.5
        values[whole] = np.round(values[whole])
        codes[:, i] = np.clip(values, domain.low, domain.high)
    return codes


@pytest.fixture(scope="module", params=CANDIDATES, ids=_id)
def fitted(request, splits) -> tuple[Pipeline, CompiledClassifier]:
    _, X_train, y_train = splits
    model = request.param.build(SEED).fit(X_train, y_train)
    return model, CompiledClassifier(compile_classifier(model))


def test_the_search_includes_the_variants_serving_relies_on():
    """Guards the parametrisation above: the structural options the compiled form handles."""
    seen = {(c.family, k, v) for c in CANDIDATES for k, v in c.params.items()}
    for family, key, values in [
        ("logistic_regression", "levels_as_categories", (True, False)),
        ("logistic_regression", "log_skewed", (True, False)),
        ("random_forest", "max_depth", (None, 8)),
        ("hist_gradient_boosting", "max_depth", (3, None)),
    ]:
        assert {(family, key, v) for v in values} <= seen


def test_probability_and_labels_equal_scikit_learn_on_every_row(fitted, all_rows):
    model, compiled = fitted
    features, codes = all_rows
    expected = model.predict_proba(features)[:, 1]
    got = compiled.probability(codes)
    assert len(got) == 1470
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    for threshold in THRESHOLDS:
        assert np.array_equal(got >= threshold, expected >= threshold), threshold


def test_probability_equals_scikit_learn_on_rows_the_data_never_has(fitted, unseen_codes):
    model, compiled = fitted
    expected = model.predict_proba(from_codes(unseen_codes))[:, 1]
    np.testing.assert_allclose(compiled.probability(unseen_codes), expected, rtol=0, atol=TOLERANCE)


@pytest.fixture(scope="module", params=[SEED, 7], ids=lambda seed: f"seed={seed}")
def alibi_forest(request, train_codes):
    return request.param, detectors.fit_outlier(train_codes, request.param)


def test_isolation_forest_score_and_flags_equal_alibi_detect(alibi_forest, all_rows, unseen_codes):
    _, detector = alibi_forest
    compiled = CompiledIsolationForest(compile_isolation_forest(detector.isolationforest))
    for codes in (all_rows[1], unseen_codes):
        expected, flags = detectors.outlier_scores(detector, codes)
        got = compiled.score(codes)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
        assert np.array_equal(got > detector.threshold, flags)
    assert flags.any()  # the flag comparison is not vacuous


def test_open_backend_forest_equals_alibi_detects_for_the_same_seed(alibi_forest, train_codes, all_rows):
    """A bundle trained with --trust open scores outliers exactly as one trained with alibi."""
    seed, detector = alibi_forest
    forest, threshold = outliers.fit_isolation_forest(train_codes, seed)
    codes = all_rows[1]
    np.testing.assert_allclose(outliers.score(forest, codes), detector.score(codes), rtol=0, atol=TOLERANCE)
    assert threshold == pytest.approx(float(detector.threshold), abs=1e-12)
    compiled = CompiledIsolationForest(compile_isolation_forest(forest))
    np.testing.assert_allclose(compiled.score(codes), detector.score(codes), rtol=0, atol=TOLERANCE)


def test_a_forest_of_one_training_row_scores_as_scikit_learn(train_codes):
    """scikit-learn's path-length normaliser is 0 for one sample; it then scores 2 ** -1, not 1."""
    forest = IsolationForest(n_estimators=5, random_state=SEED).fit(train_codes[:1])
    got = CompiledIsolationForest(compile_isolation_forest(forest)).score(train_codes[:10])
    np.testing.assert_allclose(got, -forest.decision_function(train_codes[:10]), rtol=0, atol=TOLERANCE)


def test_unsupported_estimators_are_refused_not_miscompiled(splits, train_codes):
    """The bundle then scores with scikit-learn and says why; a silent wrong compile would not."""
    _, X_train, y_train = splits
    svc = Pipeline([("prep", preprocessor()), ("model", SVC(probability=True, random_state=SEED))])
    with pytest.raises(Unsupported, match="SVC"):
        compile_classifier(svc.fit(X_train, y_train))
    dropping = Candidate("logistic_regression", {"C": 0.3}).build(SEED)
    dropping[0].set_params(categorical=OneHotEncoder(drop="first"))
    with pytest.raises(Unsupported, match="drop"):
        compile_classifier(dropping.fit(X_train, y_train))
    three_steps = Pipeline([*svc.steps[:1], ("again", preprocessor()), svc.steps[-1]])
    with pytest.raises(Unsupported, match="pipeline"):
        compile_classifier(three_steps)
    subsampled = IsolationForest(n_estimators=5, max_features=0.5, random_state=SEED).fit(train_codes)
    with pytest.raises(Unsupported, match="feature subsets"):
        compile_isolation_forest(subsampled)
