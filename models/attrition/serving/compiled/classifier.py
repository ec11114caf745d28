"""A fitted classification pipeline, compiled: preprocessor arrays plus its family's arrays."""

from __future__ import annotations

import numpy as np

from attrition.serving.compiled.base import Unsupported
from attrition.serving.compiled.families import FAMILIES, family_of
from attrition.serving.compiled.preprocess import compile_preprocessor, transform


def compile_classifier(pipeline) -> dict[str, np.ndarray]:
    """A fitted ``Pipeline([("prep", ColumnTransformer), ("model", estimator)])`` -> arrays."""
    if not hasattr(pipeline, "steps") or len(pipeline.steps) != 2:
        raise Unsupported("a pipeline other than preprocessor + model")
    prep, model = pipeline[0], pipeline[-1]
    arrays = compile_preprocessor(prep)
    family = family_of(model)
    if list(getattr(model, "classes_", [])) != [0, 1]:
        raise Unsupported("classes other than [0, 1]")
    return {**arrays, **family.compile(model), "kind": np.array(family.kind)}


class CompiledClassifier:
    """Probability of leaving from validated codes, as the compiled arrays say."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.kind = str(arrays["kind"])
        self.family = FAMILIES[self.kind]
        self.linear = self.family.linear
        if self.linear:
            self.coef, self.intercept = arrays["coef"], float(arrays["intercept"])

    def transform(self, codes: np.ndarray) -> np.ndarray:
        return transform(self.arrays, codes)

    def logit(self, codes: np.ndarray) -> np.ndarray:
        """The linear model's log-odds (what its attributions add up to)."""
        return self.transform(codes) @ self.coef + self.intercept

    def probability(self, codes: np.ndarray) -> np.ndarray:
        return self.family.probability(self.arrays, self.transform(codes))
