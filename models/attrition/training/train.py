"""Training with MLflow tracking: every trial of the search a nested run, scored by repeated
stratified cross-validated ROC AUC on the training split; the winner fitted, its decision threshold
chosen on out-of-fold predictions, and evaluated on a held-out split. One run, opened and closed here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import mlflow
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from attrition import config
from attrition.serving.compiled.calibration import base_pipeline
from attrition.training import data
from attrition.training.calibration import calibration_record, choose_method, fit_calibrated, out_of_fold_ece
from attrition.training.evaluation import best_f1_threshold, evaluation_figure, holdout_metrics
from attrition.training.search import (
    CV_METRIC,
    Candidate,
    cross_validate_all,
    cv_scheme,
    fmt_params,
    quick_mode,
    search_space,
    split,
)


@dataclass
class TrainResult:
    run_id: str
    #: The fitted pipeline, or a ``CalibratedClassifierCV`` of it when training calibrated it.
    model: Pipeline | CalibratedClassifierCV
    candidate: Candidate
    cv_roc_auc: float
    cv_roc_auc_std: float
    threshold: float
    metrics: dict[str, float]
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    trials: list[dict] = field(default_factory=list)
    #: Held-out reliability table and ECE, whether calibration was called for and which was fitted.
    calibration: dict = field(default_factory=dict)


def train(
    data_dir: str | None = None,
    quick: bool | None = None,
    seed: int = 0,
    progress: Callable[[str], None] = print,
    calibration: str = "auto",
) -> TrainResult:
    """Search, pick by CV ROC AUC, fit the winner on the training split (calibrated as ``calibration``
    says: attrition.training.calibration.SETTINGS) and evaluate it on the test split, all in one MLflow
    run (``run_id`` of the result), closed on return: log the bundle into it with
    ``mlflow.start_run(run_id=...)``."""
    quick = quick_mode() if quick is None else quick
    X, y = data.load(data_dir)
    X_train, X_test, y_train, y_test = split(X, y, seed)
    config.configure_mlflow()
    config.use_experiment()
    candidates = search_space(quick)
    cv = cv_scheme(quick, seed)
    with mlflow.start_run(run_name="train-quick" if quick else "train") as run:
        mlflow.log_params(
            {
                "data_sha256": data.SHA256,
                "n_train": len(X_train),
                "n_test": len(X_test),
                "seed": seed,
                "cv": f"{cv.__class__.__name__}({cv.get_n_splits()} folds)",
                "quick": quick,
                "trials": len(candidates),
            }
        )
        trials = _search(candidates, X_train, y_train, cv, seed, progress)
        best_index = int(np.argmax([t[CV_METRIC] for t in trials]))
        best = candidates[best_index]
        model, threshold, oof, method = _fit_winner(best, X_train, y_train, seed, calibration)
        metrics = _evaluate(best, trials[best_index], model, threshold, X_test, y_test, trials)
        record = _record_calibration(y_train, oof, X_test, y_test, model, method)
    progress(
        f"chosen: {best.family} {fmt_params(best.params)}: cv ROC AUC {metrics[CV_METRIC]:.4f}, "
        f"held-out ROC AUC {metrics['test_roc_auc']:.4f}, threshold {threshold:.3f}"
    )
    return TrainResult(
        run.info.run_id,
        model,
        best,
        metrics[CV_METRIC],
        metrics[f"{CV_METRIC}_std"],
        threshold,
        metrics,
        X_train,
        y_train,
        X_test,
        y_test,
        trials,
        record,
    )


def _search(candidates: list[Candidate], X_train, y_train, cv, seed: int, progress) -> list[dict]:
    """Cross-validate every candidate, each trial a nested run; the trials' summaries."""
    trials = []
    for i, (cand, scores, seconds) in enumerate(
        cross_validate_all(candidates, X_train, y_train, cv, seed), 1
    ):
        mean, std = float(np.mean(scores["test_score"])), float(np.std(scores["test_score"]))
        with mlflow.start_run(run_name=f"{cand.family}-{i}", nested=True):
            mlflow.log_params({"family": cand.family, **cand.params})
            mlflow.log_metrics(
                {CV_METRIC: mean, f"{CV_METRIC}_std": std, "fit_seconds": float(np.mean(scores["fit_time"]))}
            )
        trials.append({"family": cand.family, **cand.params, CV_METRIC: mean, f"{CV_METRIC}_std": std})
        progress(
            f"[{i:2d}/{len(candidates)}] {cand.family:<22} {fmt_params(cand.params):<60} "
            f"cv ROC AUC {mean:.4f} ± {std:.3f} ({seconds:.1f}s)"
        )
    return trials


def _fit_winner(best: Candidate, X_train, y_train, seed: int, calibration: str) -> tuple:
    """The winner fitted on the training split (calibrated if called for), the threshold that
    maximises F1 on its out-of-fold probabilities as served, the model's own out-of-fold
    probabilities (their calibration is recorded) and the calibration method (None: none)."""
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    model = best.build(seed).fit(X_train, y_train)
    oof = cross_val_predict(best.build(seed), X_train, y_train, cv=cv, method="predict_proba", n_jobs=2)[:, 1]
    method = choose_method(calibration, out_of_fold_ece(y_train.to_numpy(), oof))
    mlflow.log_params({"calibration_setting": calibration, "calibration": method or "none"})
    if method is None:
        return model, best_f1_threshold(y_train.to_numpy(), oof), oof, None
    model, served_oof = fit_calibrated(lambda: best.build(seed), X_train, y_train, method, cv)
    return model, best_f1_threshold(y_train.to_numpy(), served_oof), oof, method


def _record_calibration(y_train, oof: np.ndarray, X_test, y_test, model, method: str | None) -> dict:
    """The calibration record (held-out and out-of-fold ECE, reliability table), logged to the run."""
    probability = model.predict_proba(X_test)[:, 1]
    uncalibrated = base_pipeline(model).predict_proba(X_test)[:, 1] if method else None
    calibration = calibration_record(
        y_train.to_numpy(), oof, y_test.to_numpy(), probability, method, uncalibrated
    )
    mlflow.log_metrics({k: v for k, v in calibration.items() if k.endswith("_ece")})
    mlflow.log_param("needs_calibration", calibration["needs_calibration"])
    mlflow.log_dict(calibration, "calibration.json")
    return calibration


def _evaluate(best: Candidate, best_trial: dict, model, threshold: float, X_test, y_test, trials) -> dict:
    """Held-out metrics, the winner's parameters, the evaluation figure and the trials, logged."""
    probability = model.predict_proba(X_test)[:, 1]
    metrics = {
        CV_METRIC: best_trial[CV_METRIC],
        f"{CV_METRIC}_std": best_trial[f"{CV_METRIC}_std"],
        **holdout_metrics(y_test.to_numpy(), probability),
    }
    mlflow.log_params(
        {
            "model_family": best.family,
            **{f"model_{k}": v for k, v in best.params.items()},
            "decision_threshold": round(threshold, 4),
        }
    )
    mlflow.log_metrics(metrics)
    fig = evaluation_figure(y_test.to_numpy(), probability, f"{best.family} on the held-out split")
    mlflow.log_figure(fig, "plots/holdout_roc_pr_calibration.png")
    mlflow.log_table(pd.DataFrame(trials), "search/trials.json")
    return metrics
