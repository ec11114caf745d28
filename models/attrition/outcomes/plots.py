"""The report's pictures: realised vs estimated performance over time, and the calibration table."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def months_frame(report: dict) -> pd.DataFrame:
    """One row per model version and month: realised ROC AUC with its interval, estimated ROC AUC
    and F1, rows logged and joined, the training baseline and the flag."""
    records = []
    for entry in report["months"]:
        realised, estimated = entry["realised"], entry["estimated"]
        records.append(
            {
                "model_version": entry["model_version"],
                "month": entry["month"],
                "rows_logged": entry["rows_logged"],
                "rows_joined": entry["rows_joined"],
                "realised_roc_auc": realised["roc_auc"],
                "realised_roc_auc_low": realised["roc_auc_low"],
                "realised_roc_auc_high": realised["roc_auc_high"],
                "estimated_roc_auc": estimated["roc_auc"],
                "estimated_f1": estimated["f1"],
                "baseline_roc_auc": entry["baseline_roc_auc"],
                "flagged": entry["flagged"],
            }
        )
    return pd.DataFrame(records).astype({"realised_roc_auc": float, "estimated_roc_auc": float})


def performance_figure(report: dict, margin: float | None = None) -> Figure:
    """ROC AUC by month: realised (with its 95% interval) and estimated, one line pair per version,
    the training baseline minus the margin dashed; flagged months circled in red."""
    frame = months_frame(report).astype({"realised_roc_auc_low": float, "realised_roc_auc_high": float})
    fig = Figure(figsize=(10, 4))  # no pyplot: works headless and leaves notebook backends alone
    ax = fig.subplots()
    for version, rows in frame.groupby("model_version"):
        ax.plot(rows["month"], rows["realised_roc_auc"], marker="o", label=f"v{version} realised")
        ax.fill_between(rows["month"], rows["realised_roc_auc_low"], rows["realised_roc_auc_high"], alpha=0.2)
        ax.plot(rows["month"], rows["estimated_roc_auc"], marker="s", ls="--", label=f"v{version} estimated")
        flagged = rows[rows["flagged"]]
        ax.scatter(flagged["month"], flagged["realised_roc_auc"], s=160, facecolors="none", edgecolors="red")
        baseline = rows["baseline_roc_auc"].dropna()
        if len(baseline) and margin is not None:
            ax.axhline(float(baseline.iloc[0]) - margin, c="grey", ls=":", label="flag line")
    ax.set(xlabel="Month of the prediction", ylabel="ROC AUC", title="Realised vs estimated ROC AUC")
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    return fig


def calibration_figure(report: dict) -> Figure:
    """Observed leaving rate (with its interval) against the mean probability, per bin."""
    table = pd.DataFrame(report["calibration"]).dropna(subset=["mean_probability"])
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    errors = [table["observed_rate"] - table["observed_low"], table["observed_high"] - table["observed_rate"]]
    ax.errorbar(table["mean_probability"], table["observed_rate"], yerr=errors, marker="o", capsize=3)
    ax.plot([0, 1], [0, 1], ls="--", c="grey")
    ax.set(
        xlabel="Mean predicted probability",
        ylabel="Observed rate",
        title=f"Calibration (ECE {report['ece']:.3f})",
    )
    fig.tight_layout()
    return fig
