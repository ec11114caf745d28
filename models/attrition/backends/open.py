"""The open trust backend: the same statistics with scipy and scikit-learn only, and no anchors, so
that its bundles serve where the BSL-licensed alibi and alibi-detect are not installed.

Its outlier detector is scikit-learn's IsolationForest, fitted exactly as alibi-detect's ``IForest``
fits it (same estimator, same parameters, same seed), with alibi-detect's score
(``-decision_function``) and threshold rule (a percentile of the training scores)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from attrition.backends.base import FittedOutliers, TrustBackend, register
from attrition.contract.trust import OUTLIER_PERCENTILE

if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest

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
    from sklearn.ensemble import IsolationForest  # training only: the registry imports this module

    forest = IsolationForest(**FOREST_PARAMS, random_state=seed).fit(reference_codes)
    return forest, float(np.percentile(score(forest, reference_codes), OUTLIER_PERCENTILE))


def score(forest: IsolationForest, codes: np.ndarray) -> np.ndarray:
    """Higher is more unusual (alibi-detect's IForest.score)."""
    return -forest.decision_function(codes)


@register
class OpenBackend(TrustBackend):
    name = "open"

    def fit(
        self, folder: Path, classifier, codes: np.ndarray, background: np.ndarray, threshold: float, seed: int
    ) -> FittedOutliers:
        return FittedOutliers(*fit_isolation_forest(codes, seed))
