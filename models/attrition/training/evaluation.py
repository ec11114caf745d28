"""Held-out metrics and plots for a fitted classifier (used by training and by the book)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)


def holdout_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    return {
        "test_roc_auc": float(roc_auc_score(y_true, probability)),
        "test_pr_auc": float(average_precision_score(y_true, probability)),
        "test_brier": float(brier_score_loss(y_true, probability)),
    }


def best_f1_threshold(y_true: np.ndarray, probability: np.ndarray) -> float:
    """The probability cut that maximises F1: attrition is rare (16%), so 0.5 would miss most leavers."""
    precision, recall, thresholds = precision_recall_curve(y_true, probability)
    f1 = 2 * precision * recall / np.clip(precision + recall, 1e-12, None)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def evaluation_figure(y_true: np.ndarray, probability: np.ndarray, title: str = "") -> Figure:
    """ROC, precision-recall and calibration side by side."""
    fig = Figure(figsize=(13, 4))  # no pyplot: works headless and leaves notebook backends alone
    roc, pr, cal = fig.subplots(1, 3)
    fpr, tpr, _ = roc_curve(y_true, probability)
    roc.plot(fpr, tpr, label=f"AUC {roc_auc_score(y_true, probability):.3f}")
    roc.plot([0, 1], [0, 1], ls="--", c="grey")
    roc.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC")
    precision, recall, _ = precision_recall_curve(y_true, probability)
    pr.plot(recall, precision, label=f"AP {average_precision_score(y_true, probability):.3f}")
    pr.axhline(np.mean(y_true), ls="--", c="grey", label="base rate")
    pr.set(xlabel="Recall", ylabel="Precision", title="Precision-recall")
    observed, predicted = calibration_curve(y_true, probability, n_bins=8, strategy="quantile")
    cal.plot(predicted, observed, marker="o", label=f"Brier {brier_score_loss(y_true, probability):.3f}")
    cal.plot([0, 1], [0, 1], ls="--", c="grey")
    cal.set(xlabel="Predicted probability", ylabel="Observed rate", title="Calibration")
    for ax in (roc, pr, cal):
        ax.legend(loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
