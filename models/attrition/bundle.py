"""One MLflow pyfunc model carrying the classifier and its trust signals (drift reference, outlier
detector, explainers), each saved as an artifact, loadable in a clean environment.

Two trust backends, chosen when the bundle is trained and recorded in ``bundle.json``:

- ``alibi`` (default, what the book teaches): alibi-detect's TabularDrift and IForest and alibi's
  KernelShap/TreeShap and AnchorTabular are fitted and saved as the reference implementation.
- ``open``: the same statistics with scipy and scikit-learn only, and no anchors; the bundle serves
  where the BSL-licensed alibi and alibi-detect are not installed.

Either way, serving computes the numbers from plain arrays prepared when the bundle was built
(``compiled.npz``, ``reference.npz``): equal to alibi-detect's and scikit-learn's (tests show it) at a
fraction of the per-call cost, and nothing that only anchors or training need is imported until a
request needs it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal

import joblib
import mlflow
import numpy as np
import pandas as pd

from attrition import compiled, drift, signals
from attrition.config import BUNDLE_NAME
from attrition.errors import BundleError, InvalidInput
from attrition.outputs import ROW_OUTPUTS
from attrition.schema import CATEGORICAL, FEATURES, LABELS, frame_codes
from attrition.signals import ANCHOR_BUDGET_S, DriftReport, Explain

log = logging.getLogger(__name__)

TrustBackend = Literal["alibi", "open"]
TRUST_BACKENDS: tuple[TrustBackend, ...] = ("alibi", "open")
#: Distributions pinned in the model's requirements so that it loads the same anywhere (the alibi
#: backend adds ALIBI_REQUIREMENTS).
REQUIREMENTS = ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "joblib", "shap")
ALIBI_REQUIREMENTS = ("alibi", "alibi-detect", "dill")
#: Pickles (the pipeline, the isolation forest) load faithfully only in the version that wrote them.
MUST_MATCH = ("scikit-learn", "numpy")
#: Training rows scored at build time and again at load: a bundle that answers differently is refused.
SELF_CHECK_ROWS = 2


@dataclass(frozen=True)
class BundleInfo:
    """What a bundle says about itself (saved as ``bundle.json``)."""

    model_family: str
    decision_threshold: float
    cv_roc_auc: float
    trust_backend: TrustBackend = "alibi"
    drift_min_rows: int = signals.MIN_DRIFT_ROWS
    drift_p_value: float = signals.DRIFT_P_VALUE
    drift_correction: str = signals.DRIFT_CORRECTION
    outlier_percentile: float = signals.OUTLIER_PERCENTILE
    outlier_threshold: float = float("nan")
    #: Versions of the packages the bundle was built with.
    versions: dict[str, str] = field(default_factory=dict)
    #: None when the compiled scoring path was built; otherwise why not (scikit-learn then scores).
    not_compiled: str | None = None
    #: Validated codes of a few training rows and what the bundle answered for them.
    self_check: dict[str, list] = field(default_factory=dict)
    #: Held-out reliability table and ECE (attrition.calibration): CBPE trusts the probabilities.
    calibration: dict = field(default_factory=dict)


def installed_versions(names: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for name in names:
        with contextlib.suppress(PackageNotFoundError):  # an extra that is not installed
            out[name] = version(name)
    return out


class TrustBundle:
    """The loaded bundle: scores, trust signals and explanations for validated codes
    (:func:`attrition.schema.encode`), or for feature frames."""

    def __init__(self, folder: Path):
        self.folder = folder = Path(folder)
        self.info = BundleInfo(**json.loads((folder / "bundle.json").read_text()))
        self._check_environment()
        reference = np.load(folder / "reference.npz")
        self.reference, self.background = reference["codes"], reference["background"]
        self.drift_test = drift.DriftTest(self.reference, self.info.drift_p_value)
        arrays = dict(np.load(folder / "compiled.npz")) if (folder / "compiled.npz").exists() else None
        if arrays is not None:
            self.scorer = compiled.CompiledClassifier(arrays)
            self.forest = compiled.CompiledIsolationForest(arrays)
            self.scoring = "compiled"
        else:
            self.scorer = _SklearnClassifier(self.classifier)
            self.forest = _SklearnForest(joblib.load(folder / "outlier_forest.joblib"))
            self.scoring = "scikit-learn"
            log.warning(f"bundle not compiled ({self.info.not_compiled}): scoring with scikit-learn")
        self._explainer_lock = threading.Lock()
        self._check_answers()

    # --- loading --------------------------------------------------------------------------------

    def _check_environment(self) -> None:
        installed = installed_versions(MUST_MATCH)
        for name in MUST_MATCH:
            built = self.info.versions.get(name)
            if built is not None and installed.get(name) != built:
                raise BundleError(
                    f"{name}: the bundle was built with {name} {built}, this environment has "
                    f"{installed.get(name, 'none')}; its pickles would load unfaithfully. Serve it with "
                    f"{name}=={built} (the bundle's requirements), or train a new version here."
                )
        if self.info.trust_backend == "alibi" and importlib.util.find_spec("alibi_detect") is None:
            raise BundleError(
                "alibi: the bundle was trained with the alibi trust backend, and alibi/alibi-detect are "
                "not installed. Install the project's 'alibi' extra (BSL 1.1: see the README's "
                "Licences), or serve a bundle trained with `attrition train --trust open`."
            )

    def _check_answers(self) -> None:
        check = self.info.self_check
        if not check:
            return
        scores = self.score_codes(np.asarray(check["codes"], dtype=np.float64))
        for name in ("probability", "outlier_score"):
            if not np.allclose(scores[name], check[name], rtol=0, atol=1e-9):
                raise BundleError(
                    f"self-check: the bundle's {name} for its own training rows is {scores[name].tolist()} "
                    f"here, {check[name]} when it was built; refusing to serve it."
                )

    @cached_property
    def classifier(self):
        """The fitted scikit-learn pipeline (the source of truth; the compiled path needs it only for
        tree attributions and the book)."""
        return joblib.load(self.folder / "classifier.joblib")

    @cached_property
    def attributions(self):
        from attrition.attributions import LinearAttributions, TreeAttributions

        scorer = self.scorer if isinstance(self.scorer, compiled.CompiledClassifier) else None
        if scorer is not None and scorer.kind == "linear":
            return LinearAttributions(scorer, self.background)
        return TreeAttributions(self.classifier, scorer)

    @cached_property
    def anchor_explainer(self):
        if self.info.trust_backend != "alibi":
            raise InvalidInput(
                "parameters.explain",
                "anchors: this bundle has no anchor explainer; it was trained with the open trust backend "
                "(alibi's AnchorTabular is BSL-licensed). Ask for attributions (explain: true).",
            )
        from attrition import explain  # imports alibi: only when a request asks for anchors

        return explain.load_anchors(
            self.folder / "alibi" / "anchors", self.classifier, self.info.decision_threshold
        )

    def warm_up(self) -> None:
        """Import and build what the first drift test and the first explanation need (scipy.stats,
        shap for trees), so that those requests do not pay for it. Servers run it in the background
        once ready; anchors stay cold until asked for (they import alibi)."""
        self.drift_codes(self.reference[: signals.MIN_DRIFT_ROWS])
        with self._explainer_lock:
            self.attributions  # noqa: B018  (built on first access)

    # --- answers --------------------------------------------------------------------------------

    def score_codes(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        """The per-row outputs (attrition.outputs.ROW_OUTPUTS) for validated codes."""
        probability = self.scorer.probability(codes)
        outlier_score = self.forest.score(codes)
        return {
            "probability": probability,
            "prediction": np.where(probability >= self.info.decision_threshold, LABELS[1], LABELS[0]),
            "outlier_score": outlier_score,
            "is_outlier": outlier_score > self.info.outlier_threshold,
        }

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """The per-row outputs for a frame of features, as a frame."""
        scores = self.score_codes(frame_codes(features))
        return pd.DataFrame({o.name: scores[o.name] for o in ROW_OUTPUTS}, index=features.index)

    def drift_codes(self, codes: np.ndarray) -> DriftReport:
        return self.drift_test.report(codes)

    def drift(self, features: pd.DataFrame) -> DriftReport:
        return self.drift_codes(frame_codes(features))

    def explain_codes(
        self,
        codes: np.ndarray,
        mode: Explain = Explain.ATTRIBUTIONS,
        anchor_budget_s: float = ANCHOR_BUDGET_S,
    ) -> list[dict]:
        """Attributions per row; with ``mode=anchors`` each row also gets its anchor rule."""
        mode = Explain(mode)
        if mode is Explain.NONE:
            raise ValueError("explain_codes needs a mode other than none")
        with self._explainer_lock:  # build each explainer once, even when requests race for it
            attributions = self.attributions
            anchors = self.anchor_explainer if mode is Explain.ANCHORS else None
        out = attributions.explain(codes)
        if anchors is not None:
            from attrition import explain

            for row, anchor in zip(out, explain.anchors(anchors, codes, anchor_budget_s), strict=True):
                row["anchor"] = anchor
        return out

    def explain(
        self,
        features: pd.DataFrame,
        mode: Explain = Explain.ATTRIBUTIONS,
        anchor_budget_s: float = ANCHOR_BUDGET_S,
    ) -> list[dict]:
        return self.explain_codes(frame_codes(features), mode, anchor_budget_s)

    def alibi(self) -> AlibiReference:
        """The alibi / alibi-detect objects fitted with the bundle (alibi backend): the reference
        implementation the served numbers are tested against, and what the book shows."""
        if self.info.trust_backend != "alibi":
            raise BundleError("this bundle was trained with the open trust backend: it has no alibi objects")
        return AlibiReference(self.folder / "alibi", self.classifier, self.info.decision_threshold)


class AlibiReference:
    """alibi-detect's TabularDrift and IForest, alibi's KernelShap/TreeShap, as fitted at build time."""

    def __init__(self, folder: Path, classifier, threshold: float):
        from attrition import detectors, explain

        self.drift_detector = detectors.load_drift(folder / "drift")
        self.outlier_detector = detectors.load_outlier(folder / "outlier.joblib")
        self.attribution_explainer = explain.load_attributions(folder / "attributions", classifier)
        self.classifier = classifier


class _SklearnClassifier:
    """The fallback when the pipeline could not be compiled."""

    def __init__(self, pipeline):
        self.pipeline = pipeline

    def probability(self, codes: np.ndarray) -> np.ndarray:
        from attrition.schema import from_codes

        return self.pipeline.predict_proba(from_codes(codes))[:, 1]


class _SklearnForest:
    def __init__(self, forest):
        self.forest = forest

    def score(self, codes: np.ndarray) -> np.ndarray:
        from attrition import outliers

        return outliers.score(self.forest, codes)


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
        frame = pd.DataFrame(model_input)
        codes = frame_codes(frame)
        scores = self.bundle.score_codes(codes)
        out = pd.DataFrame({o.name: scores[o.name] for o in ROW_OUTPUTS}, index=frame.index)
        mode = Explain(str(params.get("explain", Explain.NONE)))
        if mode is not Explain.NONE:
            budget = float(params.get("anchor_budget_s", ANCHOR_BUDGET_S))
            out["explanation"] = [json.dumps(e) for e in self.bundle.explain_codes(codes, mode, budget)]
        if params.get("drift"):
            report = self.bundle.drift_codes(codes)
            out["batch_is_drift"] = report.is_drift
            out["batch_drifted_features"] = ",".join(report.drifted)
        return out


#: MLflow's column type for each kind of output (attrition.outputs).
_MLFLOW_TYPES = {"float64": "double", "str": "string", "bool": "boolean"}


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema([ColSpec("string" if f in CATEGORICAL else "double", f) for f in FEATURES])
    outputs = Schema([ColSpec(_MLFLOW_TYPES[o.kind], o.name) for o in ROW_OUTPUTS])
    params = ParamSchema(
        [
            ParamSpec("explain", "string", str(Explain.NONE)),
            ParamSpec("anchor_budget_s", "double", ANCHOR_BUDGET_S),
            ParamSpec("drift", "boolean", False),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def requirements(trust: TrustBackend) -> tuple[str, ...]:
    return REQUIREMENTS + (ALIBI_REQUIREMENTS if trust == "alibi" else ())


def pip_requirements(trust: TrustBackend = "alibi") -> list[str]:
    return [f"{name}=={v}" for name, v in installed_versions(requirements(trust)).items()]


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
    from attrition.attributions import background_rows

    background = background_rows(codes, seed)
    np.savez(folder / "reference.npz", codes=codes, background=background)
    if info.trust_backend == "alibi":
        from attrition import detectors, explain

        alibi = folder / "alibi"
        detectors.save_drift(detectors.fit_drift(codes), alibi / "drift")
        detector = detectors.fit_outlier(codes, seed)
        detectors.save_outlier(detector, alibi / "outlier.joblib")
        forest, threshold = detector.isolationforest, float(detector.threshold)
        explain.save(explain.fit_attributions(classifier, background, seed), alibi / "attributions")
        explain.save(explain.fit_anchors(classifier, info.decision_threshold, codes, seed), alibi / "anchors")
    elif info.trust_backend == "open":
        from attrition import outliers

        forest, threshold = outliers.fit_isolation_forest(codes, seed)
    else:
        raise ValueError(f"trust backend must be one of {TRUST_BACKENDS}, got {info.trust_backend!r}")
    joblib.dump(forest, folder / "outlier_forest.joblib")
    not_compiled = _compile(folder, classifier, forest, codes)
    info = BundleInfo(
        **{
            **asdict(info),
            "outlier_threshold": threshold,
            "versions": installed_versions(requirements(info.trust_backend)),
            "not_compiled": not_compiled,
        }
    )
    (folder / "bundle.json").write_text(json.dumps(asdict(info), indent=2))
    # The self-check: what the bundle, as it loads, answers for a few training rows.
    check = codes[:SELF_CHECK_ROWS]
    scores = TrustBundle(folder).score_codes(check)
    self_check = {
        "codes": check.tolist(),
        **{k: scores[k].tolist() for k in ("probability", "outlier_score")},
    }
    info = BundleInfo(**{**asdict(info), "self_check": self_check})
    (folder / "bundle.json").write_text(json.dumps(asdict(info), indent=2))
    return folder


def _compile(folder: Path, classifier, forest, codes: np.ndarray) -> str | None:
    """Save the compiled form when it reproduces scikit-learn on the training rows; else say why not."""
    from attrition import outliers
    from attrition.schema import from_codes

    try:
        arrays = {**compiled.compile_classifier(classifier), **compiled.compile_isolation_forest(forest)}
    except compiled.Unsupported as exc:
        return str(exc)
    expected = classifier.predict_proba(from_codes(codes))[:, 1]
    got = compiled.CompiledClassifier(arrays).probability(codes)
    expected_outliers = outliers.score(forest, codes)
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
