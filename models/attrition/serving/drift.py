"""The batch drift test, computed with scipy from reference statistics prepared once: the p-values of
alibi-detect's ``TabularDrift`` (two-sample Kolmogorov-Smirnov for numerics, chi-squared on the union
of categories for categoricals, Bonferroni over the features), without its per-call overhead.

Equal to ``TabularDrift.predict`` (tests/test_drift.py, to 1e-9): the same statistics from the same
counts, the same scipy distributions, and p-values and distances rounded to float32 as alibi-detect
stores them. alibi-detect is not imported here: this is also the open (Apache/BSD) trust backend.
"""

from __future__ import annotations

import numpy as np

from attrition.contract.schema import CATEGORICAL, FEATURES
from attrition.contract.trust import DRIFT_CORRECTION, DRIFT_P_VALUE, MIN_DRIFT_ROWS, DriftReport

_CATEGORICAL_AT = [i for i, f in enumerate(FEATURES) if f in CATEGORICAL]
_NUMERIC_AT = [i for i, f in enumerate(FEATURES) if f not in CATEGORICAL]


#: kstwo.sf(d, n) by (d, n). Exact, but scipy computes some regions with a matrix power in Python
#: (about 0.2 ms a value); a statistic is a difference of two CDF steps, so the same values recur from
#: batch to batch of a size, and a bounded cache makes the test cheap without changing any number.
_KSTWO_CACHE: dict[tuple[float, float], float] = {}
_KSTWO_CACHE_SIZE = 200_000


def _kstwo_sf(statistics: np.ndarray, n: float) -> np.ndarray:
    from scipy.stats import kstwo  # scipy.stats takes ~0.5 s to import: not before the first test

    missing = sorted({d for d in statistics.tolist() if (d, n) not in _KSTWO_CACHE})
    if missing:
        if len(_KSTWO_CACHE) + len(missing) > _KSTWO_CACHE_SIZE:
            _KSTWO_CACHE.clear()
        for d, p in zip(missing, np.clip(kstwo.sf(np.array(missing), n), 0, 1).tolist(), strict=True):
            _KSTWO_CACHE[d, n] = p
    return np.array([_KSTWO_CACHE[d, n] for d in statistics.tolist()])


class DriftTest:
    """Tests batches of validated codes against the training reference."""

    def __init__(self, reference_codes: np.ndarray, p_value: float = DRIFT_P_VALUE):
        if DRIFT_CORRECTION != "bonferroni":
            raise ValueError(f"only the Bonferroni correction is implemented, not {DRIFT_CORRECTION}")
        reference = np.asarray(reference_codes, dtype=np.float64)
        self.n_reference = len(reference)
        self.threshold = p_value / len(FEATURES)
        # K-S: the sorted reference per numeric feature, and its empirical CDF at its distinct values.
        self._sorted = [np.sort(reference[:, i]) for i in _NUMERIC_AT]
        self._distinct = [np.unique(s) for s in self._sorted]
        self._reference_cdf = [
            np.searchsorted(s, u, side="right") / self.n_reference
            for s, u in zip(self._sorted, self._distinct, strict=True)
        ]
        # Chi-squared: the reference's count of every code (all codes of the schema, as alibi-detect's
        # categories_per_feature says, whether or not the reference has them).
        self._categories = [
            np.arange(len(CATEGORICAL[FEATURES[i]]), dtype=np.float64) for i in _CATEGORICAL_AT
        ]
        self._reference_counts = [
            (reference[:, i][:, None] == c[None, :]).sum(axis=0)
            for i, c in zip(_CATEGORICAL_AT, self._categories, strict=True)
        ]

    def report(self, codes: np.ndarray) -> DriftReport:
        if len(codes) < MIN_DRIFT_ROWS:
            raise ValueError(f"drift needs at least {MIN_DRIFT_ROWS} rows, got {len(codes)}")
        p_values = np.zeros(len(FEATURES), dtype=np.float32)
        distances = np.zeros(len(FEATURES), dtype=np.float32)
        p_values[_NUMERIC_AT], distances[_NUMERIC_AT] = self._kolmogorov_smirnov(codes)
        p_values[_CATEGORICAL_AT], distances[_CATEGORICAL_AT] = self._chi_squared(codes)
        return DriftReport(
            is_drift=bool((p_values < self.threshold).any()),
            p_values=dict(zip(FEATURES, map(float, p_values), strict=True)),
            distances=dict(zip(FEATURES, map(float, distances), strict=True)),
            threshold=self.threshold,
            rows=len(codes),
        )

    def _kolmogorov_smirnov(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """scipy.stats.ks_2samp(reference, batch, mode="asymp"), statistic and p-value per feature."""
        n = len(codes)
        statistics = np.empty(len(_NUMERIC_AT))
        for k, i in enumerate(_NUMERIC_AT):
            batch = np.sort(codes[:, i])
            # The largest CDF gap is reached at a value of either sample: the reference's distinct values
            # (CDFs precomputed) and the batch's own.
            gap_at_reference = self._reference_cdf[k] - np.searchsorted(batch, self._distinct[k], "right") / n
            gap_at_batch = (
                np.searchsorted(self._sorted[k], batch, "right") / self.n_reference
                - np.searchsorted(batch, batch, "right") / n
            )
            lowest = min(gap_at_reference.min(), gap_at_batch.min())
            highest = max(gap_at_reference.max(), gap_at_batch.max())
            statistics[k] = max(np.clip(-lowest, 0, 1), highest)
        m, k = sorted([float(self.n_reference), float(n)], reverse=True)
        return _kstwo_sf(statistics, float(np.round(m * k / (m + k)))), statistics

    def _chi_squared(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """scipy.stats.chi2_contingency on the 2 x categories table (Yates' correction when dof = 1)."""
        statistics, dofs = np.empty(len(_CATEGORICAL_AT)), np.empty(len(_CATEGORICAL_AT))
        for k, i in enumerate(_CATEGORICAL_AT):
            batch_counts = (codes[:, i][:, None] == self._categories[k][None, :]).sum(axis=0)
            observed = np.vstack((self._reference_counts[k], batch_counts))
            expected = np.multiply.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
            if (expected == 0).any():
                raise ValueError(f"{FEATURES[i]}: a category absent from both samples")
            dof = expected.size - sum(expected.shape) + expected.ndim - 1
            observed = observed.astype(np.float64)
            if dof == 1:
                difference = expected - observed
                observed = observed + np.minimum(0.5, np.abs(difference)) * np.sign(difference)
            statistics[k] = ((observed - expected) ** 2 / expected).sum()
            dofs[k] = dof
        from scipy.stats import chi2

        return chi2.sf(statistics, dofs), statistics
