"""A fitted classification pipeline, compiled: preprocessor arrays plus its family's arrays, and the
calibration map when the pipeline was calibrated (``attrition.serving.compiled.calibration``)."""

from __future__ import annotations

import numpy as np

from attrition.serving.compiled import calibration
from attrition.serving.compiled.base import Unsupported
from attrition.serving.compiled.families import FAMILIES, family_of
from attrition.serving.compiled.preprocess import compile_preprocessor, transform


def compile_classifier(classifier) -> dict[str, np.ndarray]:
    """A fitted ``Pipeline([("prep", ColumnTransformer), ("model", estimator)])``, or a
    ``CalibratedClassifierCV(ensemble=False)`` of one, -> arrays."""
    pipeline = calibration.base_pipeline(classifier)
    if not hasattr(pipeline, "steps") or len(pipeline.steps) != 2:
        raise Unsupported("a pipeline other than preprocessor + model")
    prep, model = pipeline[0], pipeline[-1]
    arrays = compile_preprocessor(prep)
    family = family_of(model)
    if list(getattr(model, "classes_", [])) != [0, 1]:
        raise Unsupported("classes other than [0, 1]")
    arrays = {**arrays, **family.compile(model), "kind": np.array(family.kind)}
    if calibration.is_calibrated(classifier):
        arrays.update(calibration.compile_calibration(classifier))
        if calibration.response_of(arrays) == calibration.DECISION_FUNCTION and family.decision is None:
            raise Unsupported(f"calibration of a {family.kind} model's decision function")
    return arrays


class CompiledClassifier:
    """Probability of leaving from validated codes, as the compiled arrays say."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.kind = str(arrays["kind"])
        self.family = FAMILIES[self.kind]
        self.linear = self.family.linear
        if self.linear:
            self.coef, self.intercept = arrays["coef"], float(arrays["intercept"])
        #: ``sigmoid``, ``isotonic`` or None: the map from the model's score to the served probability.
        self.calibration = calibration.method_of(arrays)

    def transform(self, codes: np.ndarray) -> np.ndarray:
        return transform(self.arrays, codes)

    def logit(self, codes: np.ndarray) -> np.ndarray:
        """The linear model's log-odds before any calibration (what its attributions add up to)."""
        return self.transform(codes) @ self.coef + self.intercept

    def probability(self, codes: np.ndarray) -> np.ndarray:
        X = self.transform(codes)
        if self.calibration is None:
            return self.family.probability(self.arrays, X)
        if calibration.response_of(self.arrays) == calibration.DECISION_FUNCTION:
            score = self.family.decision(self.arrays, X)
        else:
            score = self.family.probability(self.arrays, X)
        return calibration.calibrate(self.arrays, score)
