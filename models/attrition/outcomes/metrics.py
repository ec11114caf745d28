"""Realised performance of a window of joined rows: ROC AUC, PR AUC (average precision), Brier score
and a calibration table, each with a percentile bootstrap 95% interval.

The bootstrap is written out rather than taken from ``scipy.stats.bootstrap``: a resample of a small
month can hold no leaver at all, where ROC AUC is undefined; such resamples are skipped (and counted)
instead of turning the whole interval into NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

#: Upper edges of the calibration bins (attrition is rare: most probabilities are small).
CALIBRATION_EDGES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
BOOTSTRAP_RESAMPLES = 400
CONFIDENCE = 0.95


def point_metrics(y: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """ROC AUC and PR AUC need both classes; with one, they are NaN (the Brier score is still defined)."""
    both = 0 < int(np.sum(y)) < len(y)
    nan = float("nan")
    return {
        "roc_auc": float(roc_auc_score(y, probability)) if both else nan,
        "pr_auc": float(average_precision_score(y, probability)) if both else nan,
        "brier": float(brier_score_loss(y, probability, pos_label=1)) if len(y) else nan,
    }


def realised(
    y: np.ndarray, probability: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> dict[str, float]:
    """The point values and ``<metric>_low`` / ``<metric>_high``, the bootstrap interval."""
    y, probability = np.asarray(y, dtype=int), np.asarray(probability, dtype=float)
    values = point_metrics(y, probability)
    draws = _bootstrap(y, probability, resamples, seed)
    tail = (1 - CONFIDENCE) / 2 * 100
    for name in list(values):
        column = draws[name].dropna().to_numpy()
        low, high = np.percentile(column, [tail, 100 - tail]) if len(column) else (np.nan, np.nan)
        values[f"{name}_low"], values[f"{name}_high"] = float(low), float(high)
    values["rows"] = int(len(y))
    values["leavers"] = int(y.sum())
    return values


def _bootstrap(y: np.ndarray, probability: np.ndarray, resamples: int, seed: int) -> pd.DataFrame:
    if len(y) == 0:
        return pd.DataFrame(columns=["roc_auc", "pr_auc", "brier"], dtype=float)
    rng = np.random.default_rng(seed)
    # One resample at a time: a workforce-sized window would not fit as a (resamples x rows) matrix.
    draws = []
    for _ in range(resamples):
        pick = rng.integers(0, len(y), size=len(y))
        draws.append(point_metrics(y[pick], probability[pick]))
    return pd.DataFrame(draws)


def calibration_table(
    y: np.ndarray, probability: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> pd.DataFrame:
    """Per probability bin: rows, mean predicted probability, observed leaving rate and the
    bootstrap interval of the observed rate (rows resampled within the bin)."""
    y, probability = np.asarray(y, dtype=int), np.asarray(probability, dtype=float)
    bins = np.digitize(probability, CALIBRATION_EDGES[1:-1], right=True)
    rng = np.random.default_rng(seed)
    tail = (1 - CONFIDENCE) / 2 * 100
    table = []
    for index, (low, high) in enumerate(zip(CALIBRATION_EDGES[:-1], CALIBRATION_EDGES[1:], strict=True)):
        inside = bins == index
        n = int(inside.sum())
        # The mean of n outcomes drawn with replacement from a bin with rate r is Binomial(n, r) / n:
        # the bootstrap of a 0/1 mean, drawn directly.
        rates = rng.binomial(n, y[inside].mean(), size=resamples) / n if n else [np.nan]
        table.append(
            {
                "bin": f"{low:.2f}-{high:.2f}",
                "rows": n,
                "mean_probability": float(probability[inside].mean()) if n else np.nan,
                "observed_rate": float(y[inside].mean()) if n else np.nan,
                "observed_low": float(np.percentile(rates, tail)),
                "observed_high": float(np.percentile(rates, 100 - tail)),
            }
        )
    return pd.DataFrame(table)


def expected_calibration_error(table: pd.DataFrame) -> float:
    """ECE: the row-weighted mean gap between mean probability and observed rate over the bins."""
    used = table[table["rows"] > 0]
    gaps = (used["mean_probability"] - used["observed_rate"]).abs()
    return float(np.sum(gaps * used["rows"]) / max(int(used["rows"].sum()), 1))
