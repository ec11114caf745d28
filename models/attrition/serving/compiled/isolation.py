"""The isolation forest, compiled: alibi-detect's IForest score from the flat tree table."""

from __future__ import annotations

import numpy as np

from attrition.serving.compiled.base import Unsupported
from attrition.serving.compiled.trees import _prefixed, _sklearn_tree, _stack_trees, walk


def compile_isolation_forest(forest) -> dict[str, np.ndarray]:
    """A fitted ``sklearn.ensemble.IsolationForest`` -> arrays. Each leaf carries the term scikit-learn
    adds for it (path length + average path length of its samples - 1)."""
    try:
        lengths, averages = forest._decision_path_lengths, forest._average_path_length_per_tree
    except AttributeError as exc:  # older scikit-learn computed these per call
        raise Unsupported("an IsolationForest without precomputed path lengths") from exc
    if forest._max_features != forest.n_features_in_:
        raise Unsupported("an IsolationForest trained on feature subsets")
    trees = [_sklearn_tree(tree, lengths[i] + averages[i] - 1.0) for i, tree in enumerate(forest.estimators_)]
    from sklearn.ensemble._iforest import _average_path_length

    arrays = _prefixed("forest_", _stack_trees(trees))
    arrays["forest_denominator"] = np.array(
        len(forest.estimators_) * float(_average_path_length([forest._max_samples])[0])
    )
    arrays["forest_offset"] = np.array(float(forest.offset_))
    return arrays


class CompiledIsolationForest:
    """alibi-detect's IForest score (``-decision_function``): higher is more unusual."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.denominator = float(arrays["forest_denominator"])
        self.offset = float(arrays["forest_offset"])

    def score(self, codes: np.ndarray) -> np.ndarray:
        X = codes.astype(np.float32).astype(np.float64)  # the trees' float32 inputs
        depths = walk(self.arrays, X, "forest_").sum(axis=1)
        scores = 2.0 ** (-depths / self.denominator) if self.denominator else np.full(len(codes), 0.5)
        return -((-scores) - self.offset)
