"""The loaded bundle: scores, trust signals and explanations for validated codes
(:func:`attrition.contract.schema.encode`) or for feature frames.

Serving computes the numbers from plain arrays prepared when the bundle was built (``compiled.npz``,
``reference.npz``) whichever trust backend fitted it: equal to alibi-detect's and scikit-learn's
(tests show it) at a fraction of the per-call cost, and nothing that only anchors or training need is
imported until a request needs it.
"""

from __future__ import annotations

import json
import logging
import threading
from functools import cached_property
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from attrition import backends
from attrition.bundle.info import MUST_MATCH, BundleInfo, installed_versions
from attrition.contract.errors import BundleError
from attrition.contract.outputs import ROW_OUTPUTS
from attrition.contract.schema import LABELS, frame_codes
from attrition.contract.trust import ANCHOR_BUDGET_S, MIN_DRIFT_ROWS, DriftReport, Explain
from attrition.serving import compiled, drift
from attrition.serving.compiled.calibration import compile_calibration
from attrition.serving.fallback import SklearnClassifier, SklearnForest

log = logging.getLogger(__name__)


class TrustBundle:
    """The loaded bundle: scores, trust signals and explanations for validated codes
    (:func:`attrition.contract.schema.encode`), or for feature frames."""

    def __init__(self, folder: Path):
        self.folder = folder = Path(folder)
        self.info = BundleInfo(**json.loads((folder / "bundle.json").read_text()))
        self.backend = backends.get(self.info.trust_backend)
        self._check_environment()
        reference = np.load(folder / "reference.npz")
        self.reference, self.background = reference["codes"], reference["background"]
        self.drift_test = drift.DriftTest(self.reference, self.info.drift_p_value)
        self.scorer, self.forest, self.scoring = self._scorers()
        self._explainer_lock = threading.Lock()
        self._check_answers()

    # --- loading --------------------------------------------------------------------------------

    def _scorers(self) -> tuple[object, object, str]:
        """The compiled scorers when the bundle has them, else scikit-learn's."""
        if (self.folder / "compiled.npz").exists():
            arrays = dict(np.load(self.folder / "compiled.npz"))
            return compiled.CompiledClassifier(arrays), compiled.CompiledIsolationForest(arrays), "compiled"
        log.warning(f"bundle not compiled ({self.info.not_compiled}): scoring with scikit-learn")
        forest = joblib.load(self.folder / "outlier_forest.joblib")
        return SklearnClassifier(self.classifier), SklearnForest(forest), "scikit-learn"

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
        self.backend.check_installed()

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
        """The fitted scikit-learn pipeline, or its ``CalibratedClassifierCV`` (the source of truth; the
        compiled path needs it only for tree attributions and the book)."""
        return joblib.load(self.folder / "classifier.joblib")

    @cached_property
    def attributions(self):
        from attrition.serving.attributions import (
            CalibratedAttributions,
            LinearAttributions,
            TreeAttributions,
        )

        scorer = self.scorer if isinstance(self.scorer, compiled.CompiledClassifier) else None
        if scorer is not None and scorer.linear:
            explainer = LinearAttributions(scorer, self.background)
        else:
            explainer = TreeAttributions(compiled.base_pipeline(self.classifier), scorer)
        calibration = self._calibration_arrays(scorer)
        return CalibratedAttributions(explainer, calibration) if calibration else explainer

    def _calibration_arrays(self, scorer: compiled.CompiledClassifier | None) -> dict:
        """The calibration map the served probability goes through (empty without one)."""
        if scorer is not None:
            return scorer.arrays if scorer.calibration else {}
        if compiled.is_calibrated(self.classifier):
            return compile_calibration(self.classifier)
        return {}

    @cached_property
    def anchor_explainer(self):
        return self.backend.load_anchors(self.folder, self.classifier, self.info.decision_threshold)

    def warm_up(self) -> None:
        """Import and build what the first drift test and the first explanation need (scipy.stats,
        shap for trees), so that those requests do not pay for it. Servers run it in the background
        once ready; anchors stay cold until asked for (they import alibi)."""
        self.drift_codes(self.reference[:MIN_DRIFT_ROWS])
        with self._explainer_lock:
            self.attributions  # noqa: B018  (built on first access)

    # --- answers --------------------------------------------------------------------------------

    def score_codes(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        """The per-row outputs (attrition.contract.outputs.ROW_OUTPUTS) for validated codes."""
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
            for row, anchor in zip(out, self.backend.anchors(anchors, codes, anchor_budget_s), strict=True):
                row["anchor"] = anchor
        return out

    def explain(
        self,
        features: pd.DataFrame,
        mode: Explain = Explain.ATTRIBUTIONS,
        anchor_budget_s: float = ANCHOR_BUDGET_S,
    ) -> list[dict]:
        return self.explain_codes(frame_codes(features), mode, anchor_budget_s)

    def alibi(self):
        """The alibi / alibi-detect objects fitted with the bundle (alibi backend): the reference
        implementation the served numbers are tested against, and what the book shows."""
        return self.backend.reference(self.folder, self.classifier, self.info.decision_threshold)
