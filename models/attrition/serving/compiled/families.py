"""The model families the compiled scorer covers, as a registry: each reads its arrays off a fitted
estimator and turns the preprocessor's output matrix into probabilities. ``compile_classifier``
finds a family by the estimator's class; ``CompiledClassifier`` by the ``kind`` saved with the arrays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from attrition.serving.compiled.base import Unsupported
from attrition.serving.compiled.trees import _prefixed, _sklearn_tree, _stack_trees, _tree_depth, walk


@dataclass(frozen=True)
class Family:
    kind: str  # saved in compiled.npz
    estimator: str  # the scikit-learn class it compiles
    compile: Callable[[object], dict[str, np.ndarray]]
    probability: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]
    #: A linear model's logit is a sum of one term per feature (exact attributions).
    linear: bool = False
    #: The estimator's decision function (what a calibrator maps), None if it has none.
    decision: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray] | None = None


def _compile_linear(model) -> dict[str, np.ndarray]:
    return {
        "coef": model.coef_[0].astype(np.float64),
        "intercept": np.array(float(model.intercept_[0])),
    }


def _linear_decision(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    return X @ arrays["coef"] + float(arrays["intercept"])


def _linear_probability(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    return expit(_linear_decision(arrays, X))


def _compile_forest(model) -> dict[str, np.ndarray]:
    trees = []
    for estimator in model.estimators_:
        value = estimator.tree_.value[:, 0, :]
        total = value.sum(axis=1)
        trees.append(_sklearn_tree(estimator, value[:, 1] / np.where(total == 0, 1.0, total)))
    # Trees compare float32 inputs with their thresholds (scikit-learn's tree dtype).
    return {**_prefixed("tree_", _stack_trees(trees)), "float32_inputs": np.array(True)}


def _forest_probability(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    return walk(arrays, X.astype(np.float32).astype(np.float64), "tree_").mean(axis=1)


def _compile_boosting(model) -> dict[str, np.ndarray]:
    trees = []
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise Unsupported("gradient boosting with native categorical splits")
        is_leaf = nodes["is_leaf"].astype(bool)
        left = np.where(is_leaf, -1, nodes["left"].astype(np.int64))
        right = np.where(is_leaf, -1, nodes["right"].astype(np.int64))
        trees.append(
            {
                "feature": nodes["feature_idx"],
                "threshold": nodes["num_threshold"],
                "left": left,
                "right": right,
                "value": nodes["value"],
                "depth": np.array(_tree_depth(left, right)),
            }
        )
    return {
        **_prefixed("tree_", _stack_trees(trees)),
        "baseline": np.array(float(np.ravel(model._baseline_prediction)[0])),
        "float32_inputs": np.array(False),
    }


def _boosting_decision(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    return walk(arrays, X, "tree_").sum(axis=1) + float(arrays["baseline"])


def _boosting_probability(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    return expit(_boosting_decision(arrays, X))


FAMILIES: dict[str, Family] = {
    family.kind: family
    for family in (
        Family("linear", "LogisticRegression", _compile_linear, _linear_probability, True, _linear_decision),
        Family("forest", "RandomForestClassifier", _compile_forest, _forest_probability),
        Family(
            "boosting",
            "HistGradientBoostingClassifier",
            _compile_boosting,
            _boosting_probability,
            decision=_boosting_decision,
        ),
    )
}


def family_of(model) -> Family:
    """The family that compiles this fitted estimator; :class:`Unsupported` for any other."""
    name = type(model).__name__
    for family in FAMILIES.values():
        if family.estimator == name:
            return family
    raise Unsupported(f"model {name}")
