"""What the trust signals mean, shared by every backend that computes them: the drift test's level and
correction, the outlier threshold rule, the explanation modes and the drift report. Light to import."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: Family-wise false-alarm rate of the batch drift test; Bonferroni-corrected over the 30 features.
DRIFT_P_VALUE = 0.05
DRIFT_CORRECTION = "bonferroni"
#: Below this many rows a two-sample test has almost no power and its p-values mean little.
MIN_DRIFT_ROWS = 30
#: Training rows scoring above this percentile are outliers: 1% of normal employees are flagged.
OUTLIER_PERCENTILE = 99.0
#: Default time budget for anchor explanations in one request.
ANCHOR_BUDGET_S = 10.0


class Explain(StrEnum):
    """What an explanation request can ask for."""

    NONE = "none"
    ATTRIBUTIONS = "attributions"
    ANCHORS = "anchors"


@dataclass
class DriftReport:
    """Feature-level drift of one batch against the training reference."""

    is_drift: bool
    p_values: dict[str, float]
    distances: dict[str, float]
    threshold: float  # per-feature p-value threshold after the correction
    rows: int

    @property
    def drifted(self) -> list[str]:
        return [f for f, p in self.p_values.items() if p < self.threshold]
