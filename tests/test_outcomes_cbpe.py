"""CBPE: the expected confusion matrix and ROC AUC from probabilities alone, checked two ways: against
scikit-learn on the "fractional" data set CBPE assumes (each row a leaver with weight p and a stayer
with weight 1 - p), and against NannyML's CBPE per month on real predictions, to 1e-6, run in a
virtualenv of its own ($ATTRITION_NANNYML_VENV, default .venv-nannyml: make install creates it)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

pytestmark = pytest.mark.train

NANNYML_VENV = Path(os.environ.get("ATTRITION_NANNYML_VENV", ROOT / ".venv-nannyml"))
NANNYML_PYTHON = NANNYML_VENV / "bin" / "python"


def fractional(probability: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every row twice: once a leaver weighted p, once a stayer weighted 1 - p."""
    n = len(probability)
    return (
        np.r_[np.ones(n), np.zeros(n)],
        np.r_[probability, probability],
        np.r_[probability, 1 - probability],
    )


def test_cbpe_is_the_expectation_over_the_calibrated_outcomes():
    from attrition.outcomes import cbpe

    rng = np.random.default_rng(3)
    p = rng.beta(1, 4, 500)
    predicted = p >= 0.3
    estimate = cbpe.estimate(p, predicted)
    y, scores, weight = fractional(p)
    assert estimate["roc_auc"] == pytest.approx(roc_auc_score(y, scores, sample_weight=weight), abs=1e-12)
    yes = np.r_[predicted, predicted]
    assert estimate["precision"] == pytest.approx(precision_score(y, yes, sample_weight=weight), abs=1e-12)
    assert estimate["recall"] == pytest.approx(recall_score(y, yes, sample_weight=weight), abs=1e-12)
    assert estimate["f1"] == pytest.approx(f1_score(y, yes, sample_weight=weight), abs=1e-12)
    assert estimate["tp"] + estimate["fp"] + estimate["fn"] + estimate["tn"] == pytest.approx(500)


def test_cbpe_equals_nannyml_per_month(release, tmp_path):
    if not NANNYML_PYTHON.exists():
        message = f"no NannyML at {NANNYML_VENV}: create it from tools/nannyml-requirements.txt"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from attrition import bundle
    from attrition.outcomes.report import estimated
    from attrition.training import data

    X, y = data.load()
    scores = bundle.load(release.model_uri).score(X)
    rng = np.random.default_rng(0)
    when = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 181, len(X)), unit="D")
    rows = pd.DataFrame(
        {
            "timestamp": when,
            "probability": scores["probability"].to_numpy(),
            "y_pred": (scores["prediction"] == "Yes").astype(int).to_numpy(),
            "y_true": y.to_numpy(),
        }
    )
    held_out = rows.loc[release.result.X_test.index]
    held_out.to_parquet(tmp_path / "reference.parquet")
    rows.drop(columns="y_true").to_parquet(tmp_path / "analysis.parquet")
    script = Path(__file__).with_name("nannyml_cbpe.py")
    args = [
        str(NANNYML_PYTHON),
        str(script),
        str(tmp_path / "reference.parquet"),
        str(tmp_path / "analysis.parquet"),
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    month = rows["timestamp"].dt.strftime("%Y-%m")
    assert sorted(theirs) == sorted(month.unique())
    for name, group in rows.assign(prediction=np.where(rows["y_pred"] == 1, "Yes", "No")).groupby(month):
        ours = estimated(group)
        for metric, value in theirs[name].items():
            assert ours[metric] == pytest.approx(value, abs=1e-6), (name, metric)
