"""The outlier detector of the open trust backend: scikit-learn's IsolationForest, fitted exactly as
alibi-detect's ``IForest`` fits it (same estimator, same parameters, same seed), with alibi-detect's
score (``-decision_function``) and threshold rule (a percentile of the training scores)."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest

from attrition.signals import OUTLIER_PERCENTILE

#: alibi-detect IForest's defaults (n_estimators, max_samples, max_features, bootstrap, n_jobs).
FOREST_PARAMS = {
    "n_estimators": 100,
    "max_samples": "auto",
    "max_features": 1.0,
    "bootstrap": False,
    "n_jobs": 1,
}


def fit_isolation_forest(reference_codes: np.ndarray, seed: int = 0) -> tuple[IsolationForest, float]:
    """The fitted forest and its flag threshold (the training scores' OUTLIER_PERCENTILE)."""
    forest = IsolationForest(**FOREST_PARAMS, random_state=seed).fit(reference_codes)
    return forest, float(np.percentile(score(forest, reference_codes), OUTLIER_PERCENTILE))


def score(forest: IsolationForest, codes: np.ndarray) -> np.ndarray:
    """Higher is more unusual (alibi-detect's IForest.score)."""
    return -forest.decision_function(codes)
