"""The alibi trust backend (the default, what the book teaches): alibi-detect's TabularDrift and
IForest and alibi's KernelShap/TreeShap and AnchorTabular, fitted and saved in the bundle's ``alibi/``
folder as the reference implementation, and anchors on request. Imports alibi only when it fits or
loads them, so the registry stays importable where alibi is not installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from attrition.backends.base import FittedOutliers, TrustBackend, register
from attrition.contract.errors import BundleError
from attrition.contract.trust import Explain

#: The bundle's subfolder holding this backend's fitted objects.
FOLDER = "alibi"


@register
class AlibiBackend(TrustBackend):
    name = "alibi"
    requirements = ("alibi", "alibi-detect", "dill")
    explains = frozenset(Explain)

    def fit(
        self, folder: Path, classifier, codes: np.ndarray, background: np.ndarray, threshold: float, seed: int
    ) -> FittedOutliers:
        from attrition.backends.alibi import detectors, explain

        alibi = folder / FOLDER
        detectors.save_drift(detectors.fit_drift(codes), alibi / "drift")
        detector = detectors.fit_outlier(codes, seed)
        detectors.save_outlier(detector, alibi / "outlier.joblib")
        explain.save(explain.fit_attributions(classifier, background, seed), alibi / "attributions")
        explain.save(explain.fit_anchors(classifier, threshold, codes, seed), alibi / "anchors")
        return FittedOutliers(detector.isolationforest, float(detector.threshold))

    def check_installed(self) -> None:
        if importlib.util.find_spec("alibi_detect") is None:
            raise BundleError(
                "alibi: the bundle was trained with the alibi trust backend, and alibi/alibi-detect are "
                "not installed. Install the project's 'alibi' extra (BSL 1.1: see the README's "
                "Licences), or serve a bundle trained with `attrition train --trust open`."
            )

    def load_anchors(self, folder: Path, classifier, threshold: float):
        from attrition.backends.alibi import explain  # imports alibi: only when a request asks for anchors

        return explain.load_anchors(folder / FOLDER / "anchors", classifier, threshold)

    def anchors(self, explainer, codes: np.ndarray, budget_s: float) -> list[dict]:
        from attrition.backends.alibi import explain

        return explain.anchors(explainer, codes, budget_s)

    def reference(self, folder: Path, classifier, threshold: float) -> AlibiReference:
        return AlibiReference(folder / FOLDER, classifier, threshold)


class AlibiReference:
    """alibi-detect's TabularDrift and IForest, alibi's KernelShap/TreeShap, as fitted at build time."""

    def __init__(self, folder: Path, classifier, threshold: float):
        from attrition.backends.alibi import detectors, explain

        self.drift_detector = detectors.load_drift(folder / "drift")
        self.outlier_detector = detectors.load_outlier(folder / "outlier.joblib")
        self.attribution_explainer = explain.load_attributions(folder / "attributions", classifier)
        self.classifier = classifier
