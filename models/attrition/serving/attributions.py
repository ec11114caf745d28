"""Per-feature attributions that are deterministic: the same row always gets the same explanation.

- Linear models: exact SHAP values in log-odds. The logit is a sum of one term per original feature
  (a feature's one-hot block or scaled column only depends on that feature), so with features
  independent of each other (interventional SHAP, the assumption KernelShap makes) a feature's
  contribution is its term minus the term's mean over the background rows, and the contributions add
  up from the mean background logit to the row's logit. This is what KernelShap on the log-odds
  converges to (tests/test_attributions.py checks it); computed exactly it costs microseconds.
- Tree ensembles: path-dependent TreeShap from ``shap`` (MIT), per transformed column, summed back to
  the original feature (a one-hot block to its categorical).
- A calibrated model: the above for the pipeline underneath, mapped through a sigmoid calibration
  exactly (``CalibratedAttributions``).

Both are stateless per call apart from shap's explainer, which is used under a lock: a request never
shares it with another (MLServer answers requests from a thread pool).
"""

from __future__ import annotations

import threading

import numpy as np

from attrition.contract.schema import FEATURES
from attrition.serving.compiled import CompiledClassifier, column_features
from attrition.serving.compiled.calibration import method_of

#: Training rows (drawn once, saved in the bundle) whose mean is the baseline of linear attributions,
#: for the served values and alibi's KernelShap alike.
BACKGROUND_ROWS = 100


def _explanation(method: str, scale: str, base: float, values: np.ndarray) -> dict:
    return {
        "method": method,
        "scale": scale,
        "base_value": float(base),
        "attributions": {f: round(float(v), 6) for f, v in zip(FEATURES, values, strict=True)},
    }


class LinearAttributions:
    """Exact interventional SHAP values of a compiled linear model, in log-odds."""

    method = "LinearShap"
    scale = "log-odds"

    def __init__(self, model: CompiledClassifier, background_codes: np.ndarray):
        if not model.linear:
            raise ValueError("LinearAttributions needs a linear model")
        self.model = model
        owner = column_features(model.arrays)
        #: (transformed column -> original feature) as a 0/1 matrix: a column's term adds to its feature.
        self._sum_by_feature = np.zeros((len(owner), len(FEATURES)))
        self._sum_by_feature[np.arange(len(owner)), owner] = 1.0
        self._baseline = self.terms(background_codes).mean(axis=0)
        self.base_value = float(model.intercept + self._baseline.sum())

    def terms(self, codes: np.ndarray) -> np.ndarray:
        """Each feature's term of the logit, per row (rows x features)."""
        return (self.model.transform(codes) * self.model.coef) @ self._sum_by_feature

    def values(self, codes: np.ndarray) -> np.ndarray:
        return self.terms(codes) - self._baseline

    def explain(self, codes: np.ndarray) -> list[dict]:
        return [_explanation(self.method, self.scale, self.base_value, row) for row in self.values(codes)]


class TreeAttributions:
    """Path-dependent TreeShap of the pipeline's tree ensemble, summed back to the original features."""

    method = "TreeShap"

    def __init__(self, pipeline, model: CompiledClassifier | None = None):
        import shap  # only tree bundles need it (and it takes a second to import)

        self.pipeline = pipeline
        self.model = model
        estimator = pipeline[-1]
        self.explainer = shap.TreeExplainer(estimator, feature_perturbation="tree_path_dependent")
        self.scale = "probability" if type(estimator).__name__ == "RandomForestClassifier" else "log-odds"
        expected = np.ravel(self.explainer.expected_value)
        self.base_value = float(expected[-1])
        self._lock = threading.Lock()
        self._owner = column_features(model.arrays) if model is not None else _owner_from_pipeline(pipeline)

    def _transformed(self, codes: np.ndarray) -> np.ndarray:
        if self.model is not None:
            return self.model.transform(codes)
        from attrition.contract.schema import from_codes

        matrix = self.pipeline[0].transform(from_codes(codes))
        return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=np.float64)

    def explain(self, codes: np.ndarray) -> list[dict]:
        return [_explanation(self.method, self.scale, self.base_value, row) for row in self.values(codes)]

    def values(self, codes: np.ndarray) -> np.ndarray:
        X = self._transformed(codes)
        with self._lock:
            values = self.explainer.shap_values(X, check_additivity=False)
        values = np.asarray(values[-1] if isinstance(values, list) else values)
        if values.ndim == 3:  # (rows, columns, classes)
            values = values[..., -1]
        per_feature = np.zeros((len(values), len(FEATURES)))
        np.add.at(per_feature.T, self._owner, values.T)
        return per_feature


class CalibratedAttributions:
    """Attributions of a calibrated model, from those of the score its calibrator maps.

    Sigmoid (Platt) calibration is affine in that score: the served log-odds are ``-(a * s + b)``. So
    each attribution times ``-a``, and the base value mapped the same way, add up exactly to the served
    probability's log-odds, whatever the score's scale (a logit, or a forest's probability). An isotonic
    map is not affine: its attributions stay those of the score, and their scale says so."""

    def __init__(self, inner, arrays: dict[str, np.ndarray]):
        self.inner, self.method = inner, inner.method
        if method_of(arrays) == "sigmoid":
            a, b = float(arrays["calibration_a"]), float(arrays["calibration_b"])
            self.scale, self.slope = "log-odds", -a
            self.base_value = -(a * inner.base_value + b)
        else:
            self.scale, self.slope = f"{inner.scale} before isotonic calibration", 1.0
            self.base_value = inner.base_value

    def values(self, codes: np.ndarray) -> np.ndarray:
        return self.slope * self.inner.values(codes)

    def explain(self, codes: np.ndarray) -> list[dict]:
        return [_explanation(self.method, self.scale, self.base_value, row) for row in self.values(codes)]


def _owner_from_pipeline(pipeline) -> np.ndarray:
    owner = []
    for _, transformer, columns in pipeline[0].transformers_:
        if transformer == "drop" or not len(columns):
            continue
        encoder = transformer if hasattr(transformer, "categories_") else None
        for i, name in enumerate(columns):
            owner += [FEATURES.index(name)] * (len(encoder.categories_[i]) if encoder is not None else 1)
    return np.array(owner)


def background_rows(codes: np.ndarray, seed: int = 0) -> np.ndarray:
    """The background: BACKGROUND_ROWS training rows drawn with ``seed`` (all of them if fewer)."""
    rng = np.random.default_rng(seed)
    return codes[np.sort(rng.choice(len(codes), min(len(codes), BACKGROUND_ROWS), replace=False))]
