"""A release: train, bundle and register in one go (what ``attrition train`` and ``make train`` run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mlflow

from attrition import backends, config, registry
from attrition.bundle import BundleInfo, log_bundle
from attrition.training.calibration import choose_method
from attrition.training.search import CV_METRIC
from attrition.training.train import TrainResult, train


@dataclass
class Release:
    name: str
    version: str
    aliases: list[str]
    run_id: str
    cv_roc_auc: float
    model_uri: str
    result: TrainResult


def train_and_register(
    data_dir: str | None = None,
    quick: bool | None = None,
    seed: int = 0,
    name: str = config.MODEL_NAME,
    progress: Callable[[str], None] = print,
    trust: str = backends.DEFAULT,
    calibration: str = "auto",
) -> Release:
    """Train (its own run), then log the bundle into that run and register it as a new version."""
    backends.get(trust)  # an unknown backend fails before the search, not after it
    choose_method(calibration, 0.0)  # and so does an unknown calibration setting
    result = train(data_dir, quick=quick, seed=seed, progress=progress, calibration=calibration)
    info = BundleInfo(
        result.candidate.family,
        result.threshold,
        result.cv_roc_auc,
        trust_backend=trust,
        calibration=result.calibration,
    )
    progress(f"fitting the trust signals ({trust} backend) and logging the bundle ...")
    with mlflow.start_run(run_id=result.run_id):
        mlflow.set_tag("trust_backend", trust)
        model_info = log_bundle(result.model, info, result.X_train, registered_model_name=name, seed=seed)
    version = str(model_info.registered_model_version)
    aliases = registry.mark_new_version(version, name, {"trust_backend": trust})
    progress(
        f"registered {name} version {version} ({', '.join(aliases)}): {CV_METRIC} {result.cv_roc_auc:.4f}"
    )
    return Release(name, version, aliases, result.run_id, result.cv_roc_auc, model_info.model_uri, result)
