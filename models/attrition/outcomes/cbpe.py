"""Confidence-based performance estimation (CBPE): performance expected from the probabilities alone,
before any label arrives.

If the probabilities are calibrated, a row scored ``p`` is a leaver with probability ``p``: a row
predicted "Yes" adds ``p`` to the expected true positives and ``1 - p`` to the expected false
positives; a row predicted "No" adds ``p`` to the expected false negatives and ``1 - p`` to the true
negatives. The expected ROC curve walks the rows from the highest probability down, adding ``p`` to
the true-positive count and ``1 - p`` to the false-positive count at each step. These are NannyML's
formulas (tests/test_outcomes_cbpe.py checks equality with NannyML to 1e-6). Written here rather than
depending on NannyML, which pins old versions of half the scientific stack and is barely maintained:
the estimate is a few sums, and the runtime computes it on every window.

It cannot see concept shift: when the link between inputs and leaving changes but the probabilities
do not, the estimate stays where it was. Only realised performance catches that.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import auc

#: The estimated metrics, in the order reports show them.
ESTIMATED = ("roc_auc", "precision", "recall", "f1")


def expected_confusion(probability: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Expected true/false positives/negatives (``tp``, ``fp``, ``fn``, ``tn``) of a window, given
    the calibrated probabilities and the predictions made at the bundle's threshold (bools)."""
    p = np.asarray(probability, dtype=float)
    yes = np.asarray(predicted, dtype=bool)
    return {
        "tp": float(p[yes].sum()),
        "fp": float((1 - p[yes]).sum()),
        "fn": float(p[~yes].sum()),
        "tn": float((1 - p[~yes]).sum()),
    }


def expected_roc_auc(probability: np.ndarray) -> float:
    """The area under the expected ROC curve; NaN for fewer than two rows."""
    p = np.sort(np.asarray(probability, dtype=float))[::-1]
    if len(p) < 2:
        return float("nan")
    tps = np.r_[0.0, np.cumsum(p)]
    fps = np.r_[0.0, np.cumsum(1 - p)]
    if tps[-1] <= 0 or fps[-1] <= 0:
        return float("nan")
    return float(auc(fps / fps[-1], tps / tps[-1]))


def estimate(probability: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Expected ROC AUC, precision, recall and F1 of a window, and its expected confusion matrix.
    Precision, recall and F1 with a zero denominator are 0, as in NannyML."""
    cm = expected_confusion(probability, predicted)
    tp, fp, fn = cm["tp"], cm["fp"], cm["fn"]
    return {
        "roc_auc": expected_roc_auc(probability),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": tp / (tp + 0.5 * (fp + fn)) if tp + fp + fn else 0.0,
        "rows": int(len(np.asarray(probability))),
        **cm,
    }
