"""One MLflow pyfunc model carrying the classifier and its trust signals: drift detector, outlier
detector and explainers, each saved as an artifact, loadable in a clean environment."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from attrition import detectors, explain
from attrition.config import BUNDLE_NAME, EXPLAIN_MODES
from attrition.schema import CATEGORICAL, FEATURES, LABELS, to_codes, validate_features

#: Default time budget for anchor explanations in one request.
ANCHOR_BUDGET_S = 10.0
#: Distributions pinned in the model's requirements so it loads the same anywhere.
REQUIREMENTS = (
    "mlflow",
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "joblib",
    "alibi",
    "alibi-detect",
    "shap",
    "dill",
)
OUTPUTS = ("probability", "prediction", "outlier_score", "is_outlier")


@dataclass(frozen=True)
class BundleInfo:
    """What a bundle says about itself (saved as ``bundle.json``)."""

    model_family: str
    decision_threshold: float
    cv_roc_auc: float
    drift_min_rows: int = detectors.MIN_DRIFT_ROWS
    drift_p_value: float = detectors.DRIFT_P_VALUE
    drift_correction: str = detectors.DRIFT_CORRECTION
    outlier_percentile: float = detectors.OUTLIER_PERCENTILE


class TrustBundle:
    """The loaded bundle: scores, trust signals and explanations for validated feature frames."""

    def __init__(self, folder: Path):
        folder = Path(folder)
        self.info = BundleInfo(**json.loads((folder / "bundle.json").read_text()))
        self.classifier = joblib.load(folder / "classifier.joblib")
        self.drift_detector = detectors.load_drift(folder / "drift")
        self.outlier_detector = detectors.load_outlier(folder / "outlier.joblib")
        self.attribution_explainer = explain.load_attributions(folder / "attributions", self.classifier)
        self.anchor_explainer = explain.load_anchors(
            folder / "anchors", self.classifier, self.info.decision_threshold
        )

    def score(self, features: pd.DataFrame, codes: np.ndarray | None = None) -> pd.DataFrame:
        """Probability of leaving, label at the decision threshold, outlier score and flag, per row.
        Pass ``codes`` (``to_codes(features)``) when the caller has them already."""
        probability = self.classifier.predict_proba(features)[:, 1]
        codes = to_codes(features) if codes is None else codes
        scores, flags = detectors.outlier_scores(self.outlier_detector, codes)
        return pd.DataFrame(
            {
                "probability": probability.astype("float64"),
                "prediction": np.where(probability >= self.info.decision_threshold, LABELS[1], LABELS[0]),
                "outlier_score": scores,
                "is_outlier": flags.astype(bool),
            },
            index=features.index,
        )

    def drift(self, features: pd.DataFrame) -> detectors.DriftReport:
        return detectors.drift_report(self.drift_detector, to_codes(features))

    def drift_codes(self, codes: np.ndarray) -> detectors.DriftReport:
        return detectors.drift_report(self.drift_detector, codes)

    def explain(
        self, features: pd.DataFrame, mode: str = "attributions", anchor_budget_s: float = ANCHOR_BUDGET_S
    ) -> list[dict]:
        """Attributions per row; with ``mode="anchors"`` each row also gets its anchor rule."""
        if mode not in EXPLAIN_MODES[1:]:
            raise ValueError(f"explain must be one of {list(EXPLAIN_MODES)}, got {mode!r}")
        codes = to_codes(features)
        out = explain.attributions(self.attribution_explainer, self.classifier, codes)
        if mode == "anchors":
            for row, anchor in zip(
                out, explain.anchors(self.anchor_explainer, codes, anchor_budget_s), strict=True
            ):
                row["anchor"] = anchor
        return out


class AttritionModel(mlflow.pyfunc.PythonModel):
    """The pyfunc face of :class:`TrustBundle`.

    ``predict`` returns one row per employee. Batch drift is a property of the whole batch, which a
    pyfunc's per-row frame cannot hold, so with ``drift=True`` every row repeats the batch's verdict
    (``batch_is_drift``) and the drifted features (``batch_drifted_features``, comma-separated).
    """

    def load_context(self, context) -> None:
        self.bundle = TrustBundle(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input, params=None):
        params = params or {}
        features = validate_features(pd.DataFrame(model_input))
        out = self.bundle.score(features)
        mode = str(params.get("explain", "none"))
        if mode != "none":
            budget = float(params.get("anchor_budget_s", ANCHOR_BUDGET_S))
            out["explanation"] = [json.dumps(e) for e in self.bundle.explain(features, mode, budget)]
        if params.get("drift"):
            report = self.bundle.drift(features)
            out["batch_is_drift"] = report.is_drift
            out["batch_drifted_features"] = ",".join(report.drifted)
        return out


def signature() -> ModelSignature:
    inputs = Schema([ColSpec("string" if f in CATEGORICAL else "double", f) for f in FEATURES])
    outputs = Schema(
        [
            ColSpec("double", "probability"),
            ColSpec("string", "prediction"),
            ColSpec("double", "outlier_score"),
            ColSpec("boolean", "is_outlier"),
        ]
    )
    params = ParamSchema(
        [
            ParamSpec("explain", "string", "none"),
            ParamSpec("anchor_budget_s", "double", ANCHOR_BUDGET_S),
            ParamSpec("drift", "boolean", False),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def pip_requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in REQUIREMENTS]


def build(folder: Path, classifier, info: BundleInfo, X_train: pd.DataFrame, seed: int = 0) -> Path:
    """Fit the detectors and explainers on the training split and save everything into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    codes = to_codes(validate_features(X_train))
    # joblib inside the pyfunc rather than a nested mlflow.sklearn model: mlflow 3 saves sklearn with skops
    # by default, which refuses to load types it is not told to trust (a random forest's trees among them).
    joblib.dump(classifier, folder / "classifier.joblib")
    detectors.save_drift(detectors.fit_drift(codes), folder / "drift")
    detectors.save_outlier(detectors.fit_outlier(codes, seed), folder / "outlier.joblib")
    explain.save(explain.fit_attributions(classifier, codes, seed), folder / "attributions")
    explain.save(explain.fit_anchors(classifier, info.decision_threshold, codes, seed), folder / "anchors")
    (folder / "bundle.json").write_text(json.dumps(asdict(info), indent=2))
    return folder


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
            input_example=X_train.head(2),
            pip_requirements=pip_requirements(),
            code_paths=[str(Path(__file__).parent)],
            registered_model_name=registered_model_name,
        )


def load(model_uri: str) -> TrustBundle:
    """The :class:`TrustBundle` behind a logged or registered bundle (any MLflow URI or local folder)."""
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().bundle


def export(model_uri: str, folder: str | Path) -> Path:
    """Copy a logged or registered bundle into a local MLflow model folder (servable by its path)."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty")
    folder.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(folder)))
