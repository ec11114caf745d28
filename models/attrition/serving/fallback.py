"""Scoring with scikit-learn itself, for a bundle whose estimators could not be compiled
(attrition.serving.compiled says why): the same interface as the compiled scorers."""

from __future__ import annotations

import numpy as np

from attrition.backends.open import score as isolation_score
from attrition.contract.schema import from_codes


class SklearnClassifier:
    """Probability of leaving from validated codes, through the fitted pipeline."""

    def __init__(self, pipeline):
        self.pipeline = pipeline

    def probability(self, codes: np.ndarray) -> np.ndarray:
        return self.pipeline.predict_proba(from_codes(codes))[:, 1]


class SklearnForest:
    """The isolation forest's score (higher: more unusual), through scikit-learn."""

    def __init__(self, forest):
        self.forest = forest

    def score(self, codes: np.ndarray) -> np.ndarray:
        return isolation_score(self.forest, codes)
