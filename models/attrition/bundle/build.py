"""Building a bundle: fit the trust signals on the training split with the chosen backend, compile
what serves, record what the bundle answers for a few of its own rows, and log it into MLflow."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd

import attrition
from attrition import backends
from attrition.backends.open import score as isolation_score
from attrition.bundle.info import (
    SELF_CHECK_ROWS,
    BundleInfo,
    installed_versions,
    pip_requirements,
    requirements,
)
from attrition.bundle.pyfunc import AttritionModel, signature
from attrition.bundle.trust_bundle import TrustBundle
from attrition.config import BUNDLE_NAME
from attrition.contract.schema import frame_codes, from_codes
from attrition.serving import compiled


def build(
    folder: Path,
    classifier,
    info: BundleInfo,
    X_train: pd.DataFrame,
    seed: int = 0,
) -> Path:
    """Fit the trust signals on the training split and save everything into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    codes = frame_codes(X_train)
    # joblib inside the pyfunc rather than a nested mlflow.sklearn model: mlflow 3 saves sklearn with skops
    # by default, which refuses to load types it is not told to trust (a random forest's trees among them).
    joblib.dump(classifier, folder / "classifier.joblib")
    from attrition.serving.attributions import background_rows

    background = background_rows(codes, seed)
    np.savez(folder / "reference.npz", codes=codes, background=background)
    backend = backends.get(info.trust_backend)
    fitted = backend.fit(folder, classifier, codes, background, info.decision_threshold, seed)
    joblib.dump(fitted.forest, folder / "outlier_forest.joblib")
    info = replace(
        info,
        outlier_threshold=fitted.threshold,
        versions=installed_versions(requirements(info.trust_backend)),
        not_compiled=_compile(folder, classifier, fitted.forest, codes),
    )
    _write_info(folder, info)
    # The self-check: what the bundle, as it loads, answers for a few training rows.
    check = codes[:SELF_CHECK_ROWS]
    scores = TrustBundle(folder).score_codes(check)
    self_check = {
        "codes": check.tolist(),
        **{k: scores[k].tolist() for k in ("probability", "outlier_score")},
    }
    _write_info(folder, replace(info, self_check=self_check))
    return folder


def _write_info(folder: Path, info: BundleInfo) -> None:
    (folder / "bundle.json").write_text(json.dumps(asdict(info), indent=2))


def _compile(folder: Path, classifier, forest, codes: np.ndarray) -> str | None:
    """Save the compiled form when it reproduces scikit-learn on the training rows; else say why not."""
    try:
        arrays = {**compiled.compile_classifier(classifier), **compiled.compile_isolation_forest(forest)}
    except compiled.Unsupported as exc:
        return str(exc)
    expected = classifier.predict_proba(from_codes(codes))[:, 1]
    got = compiled.CompiledClassifier(arrays).probability(codes)
    expected_outliers = isolation_score(forest, codes)
    got_outliers = compiled.CompiledIsolationForest(arrays).score(codes)
    if not (
        np.allclose(got, expected, rtol=0, atol=1e-9)
        and np.allclose(got_outliers, expected_outliers, 0, 1e-9)
    ):
        return "the compiled form did not reproduce scikit-learn on the training rows"
    np.savez(folder / "compiled.npz", **arrays)
    return None


def log_bundle(
    classifier,
    info: BundleInfo,
    X_train: pd.DataFrame,
    registered_model_name: str | None = None,
    seed: int = 0,
) -> mlflow.models.model.ModelInfo:
    """Build the bundle and log it as a pyfunc into the active run (registering it if a name is given)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(Path(tmp) / "bundle", classifier, info, X_train, seed)
        return mlflow.pyfunc.log_model(
            name=BUNDLE_NAME,
            python_model=AttritionModel(),
            artifacts={"bundle": str(folder)},
            signature=signature(),
            input_example=X_train.head(SELF_CHECK_ROWS),
            pip_requirements=pip_requirements(info.trust_backend),
            # The whole package, so that the model loads where it is not installed.
            code_paths=[str(Path(attrition.__file__).parent)],
            registered_model_name=registered_model_name,
        )
