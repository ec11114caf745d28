"""A compiled form of the fitted scikit-learn estimators: the same numbers from plain numpy arrays,
without scikit-learn's per-call overhead (input validation, DataFrames, one Python loop per tree).

scikit-learn stays the source of truth: these arrays are read off the fitted pipeline and isolation
forest when the bundle is built, saved in it as ``compiled.npz`` (no pickle), and checked against
scikit-learn on the training rows before they are saved. tests/test_compiled.py shows equality
(max abs difference <= 1e-6, same labels and flags) on all 1,470 rows for every model family the
search can choose. What cannot be compiled raises :class:`Unsupported`, and the bundle then scores
with scikit-learn and says why.

Hand-written rather than ONNX Runtime: the compiled scorer reads the ordinal codes the schema already
produces (no string tensors), runs in float64 exactly as scikit-learn does (ONNX tree ensembles run
in float32, which can flip a split), and adds no dependency to the image.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from attrition.schema import CATEGORICAL, FEATURES


class Unsupported(ValueError):
    """A fitted estimator (or a setting of one) that the compiled form does not cover."""


# --- preprocessing: the ColumnTransformer -------------------------------------------------------


def _unwrap(transformer) -> list:
    """A transformer or a Pipeline of transformers -> the list of steps."""
    return [step for _, step in transformer.steps] if hasattr(transformer, "steps") else [transformer]


def _compile_preprocessor(prep) -> dict[str, np.ndarray]:
    """ColumnTransformer -> one-hot lookup tables and the affine map of the numeric columns.

    The output column order is scikit-learn's: each transformer's block in ``transformers_`` order.
    """
    if getattr(prep, "remainder", "drop") != "drop" and len(getattr(prep, "_remainder", (0, 0, []))[2]):
        raise Unsupported("ColumnTransformer remainder other than 'drop'")
    onehot_feature, onehot_lut, numeric_feature, numeric_log, numeric_mean, numeric_scale = (
        [],
        [],
        [],
        [],
        [],
        [],
    )
    onehot_start, numeric_column = [], []
    column = 0
    for _, transformer, columns in prep.transformers_:
        if transformer == "drop" or not len(columns):
            continue
        steps = _unwrap(transformer)
        if len(steps) == 1 and type(steps[0]).__name__ == "OneHotEncoder":
            encoder = steps[0]
            if encoder.drop_idx_ is not None or getattr(encoder, "_infrequent_enabled", False):
                raise Unsupported("OneHotEncoder with drop or infrequent categories")
            for name, categories in zip(columns, encoder.categories_, strict=True):
                onehot_feature.append(FEATURES.index(name))
                onehot_start.append(column)
                onehot_lut.append(_code_positions(name, categories))
                column += len(categories)
            continue
        log = False
        scaler = steps[-1]
        if type(scaler).__name__ != "StandardScaler":
            raise Unsupported(f"transformer {type(scaler).__name__}")
        if len(steps) == 2:
            function = steps[0]
            if type(function).__name__ != "FunctionTransformer" or function.func is not np.log1p:
                raise Unsupported("a function other than numpy.log1p before StandardScaler")
            log = True
        elif len(steps) != 1:
            raise Unsupported("a pipeline of more than two numeric steps")
        mean = scaler.mean_ if scaler.with_mean else np.zeros(len(columns))
        scale = scaler.scale_ if scaler.with_std else np.ones(len(columns))
        for i, name in enumerate(columns):
            if name in CATEGORICAL:
                raise Unsupported(f"a scaled categorical column {name}")
            numeric_feature.append(FEATURES.index(name))
            numeric_log.append(log)
            numeric_mean.append(mean[i])
            numeric_scale.append(scale[i])
            numeric_column.append(column)
            column += 1
    width = max(len(t) for t in onehot_lut) if onehot_lut else 1
    lut = np.full((len(onehot_lut), width), -1, dtype=np.int64)
    for i, positions in enumerate(onehot_lut):
        lut[i, : len(positions)] = positions
    return {
        "n_columns": np.array(column),
        "onehot_feature": np.array(onehot_feature, dtype=np.int64),
        "onehot_start": np.array(onehot_start, dtype=np.int64),
        "onehot_lut": lut,
        "numeric_feature": np.array(numeric_feature, dtype=np.int64),
        "numeric_column": np.array(numeric_column, dtype=np.int64),
        "numeric_log": np.array(numeric_log, dtype=bool),
        "numeric_mean": np.array(numeric_mean, dtype=np.float64),
        "numeric_scale": np.array(numeric_scale, dtype=np.float64),
    }


def _code_positions(name: str, categories: np.ndarray) -> list[int]:
    """For each possible code of the feature, the encoder's column (or -1: unknown, all zeros).

    Categoricals arrive as ordinal codes of the schema; numeric levels (e.g. JobLevel 1..5) as their
    value, which must then be a small non-negative integer to index the table.
    """
    if name in CATEGORICAL:
        lookup = {str(c): i for i, c in enumerate(categories)}
        return [lookup.get(value, -1) for value in CATEGORICAL[name]]
    values = np.asarray(categories, dtype=np.float64)
    if (values < 0).any() or (values != np.round(values)).any() or values.max() > 1000:
        raise Unsupported(f"one-hot levels of {name} that are not small non-negative integers")
    positions = [-1] * (int(values.max()) + 1)
    for i, value in enumerate(values.astype(int)):
        positions[value] = i
    return positions


def transform(arrays: dict[str, np.ndarray], codes: np.ndarray) -> np.ndarray:
    """Validated codes -> the preprocessor's output matrix (dense float64)."""
    n = len(codes)
    out = np.zeros((n, int(arrays["n_columns"])), dtype=np.float64)
    numeric = codes[:, arrays["numeric_feature"]]
    logged = arrays["numeric_log"]
    if logged.any():
        numeric = numeric.copy()
        numeric[:, logged] = np.log1p(numeric[:, logged])
    out[:, arrays["numeric_column"]] = (numeric - arrays["numeric_mean"]) / arrays["numeric_scale"]
    lut = arrays["onehot_lut"]
    values = codes[:, arrays["onehot_feature"]]
    index = values.astype(np.int64)
    # A value that is not one of the table's integers is an unknown category: no column is set, as
    # OneHotEncoder(handle_unknown="ignore") does.
    known = (index == values) & (index >= 0) & (index < lut.shape[1])
    features = np.broadcast_to(np.arange(lut.shape[0]), index.shape)
    position = np.where(known, lut[features, np.where(known, index, 0)], -1)
    rows, blocks = np.nonzero(position >= 0)
    out[rows, arrays["onehot_start"][blocks] + position[rows, blocks]] = 1.0
    return out


def column_features(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The feature (index into FEATURES) each output column comes from."""
    owner = np.empty(int(arrays["n_columns"]), dtype=np.int64)
    owner[arrays["numeric_column"]] = arrays["numeric_feature"]
    lut = arrays["onehot_lut"]
    for block, (feature, start) in enumerate(
        zip(arrays["onehot_feature"], arrays["onehot_start"], strict=True)
    ):
        width = int((lut[block] >= 0).sum())
        owner[start : start + width] = feature
    return owner


# --- trees ----------------------------------------------------------------------------------------


def _stack_trees(trees: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Several trees -> one flat node table with global child indices; a leaf points to itself, so
    walking every tree ``depth`` steps lands on its leaf whatever the path length."""
    feature, threshold, left, right, roots, leaf_value = [], [], [], [], [], []
    offset = depth = 0
    for tree in trees:
        count = len(tree["left"])
        is_leaf = tree["left"] < 0
        index = np.arange(count)
        feature.append(np.where(is_leaf, 0, tree["feature"]))
        threshold.append(np.where(is_leaf, np.inf, tree["threshold"]))
        left.append(np.where(is_leaf, index, tree["left"]) + offset)
        right.append(np.where(is_leaf, index, tree["right"]) + offset)
        leaf_value.append(tree["value"])
        roots.append(offset)
        depth = max(depth, int(tree["depth"]))
        offset += count
    return {
        "feature": np.concatenate(feature).astype(np.int64),
        "threshold": np.concatenate(threshold).astype(np.float64),
        "left": np.concatenate(left).astype(np.int64),
        "right": np.concatenate(right).astype(np.int64),
        "value": np.concatenate(leaf_value).astype(np.float64),
        "roots": np.array(roots, dtype=np.int64),
        "depth": np.array(depth),
    }


def _tree_depth(left: np.ndarray, right: np.ndarray) -> int:
    depth = np.zeros(len(left), dtype=np.int64)
    for node in range(len(left)):  # children always come after their parent in scikit-learn trees
        if left[node] >= 0:
            depth[left[node]] = depth[right[node]] = depth[node] + 1
    return int(depth.max())


#: Rows walked at once: (rows x trees) node indices stay a few MB however large the batch.
WALK_ROWS = 8192


def walk(trees: dict[str, np.ndarray], X: np.ndarray, prefix: str = "") -> np.ndarray:
    """The leaf value of every row in every tree: shape (rows, trees).

    All trees advance one level per step, with flat ``take``s rather than 2-D fancy indexing (several
    times faster on numpy); a leaf's children are itself, so ``depth`` steps reach every leaf."""
    feature, threshold = trees[prefix + "feature"], trees[prefix + "threshold"]
    children = np.stack([trees[prefix + "left"], trees[prefix + "right"]], axis=1).ravel()
    roots, depth = trees[prefix + "roots"], int(trees[prefix + "depth"])
    X = np.ascontiguousarray(X, dtype=np.float64)
    out = np.empty((len(X), len(roots)), dtype=trees[prefix + "value"].dtype)
    for start in range(0, len(X), WALK_ROWS):
        chunk = X[start : start + WALK_ROWS]
        flat, width = chunk.ravel(), chunk.shape[1]
        node = np.tile(roots, (len(chunk), 1))
        row_start = (np.arange(len(chunk)) * width)[:, None]
        for _ in range(depth):
            go_right = flat.take(row_start + feature.take(node)) > threshold.take(node)
            node = children.take(2 * node + go_right)
        out[start : start + len(chunk)] = trees[prefix + "value"].take(node)
    return out


def _sklearn_tree(tree, value: np.ndarray) -> dict[str, np.ndarray]:
    t = tree.tree_
    return {
        "feature": t.feature,
        "threshold": t.threshold,
        "left": t.children_left,
        "right": t.children_right,
        "value": value,
        "depth": np.array(t.max_depth),
    }


def _prefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {prefix + k: v for k, v in arrays.items()}


# --- classifiers ----------------------------------------------------------------------------------


def compile_classifier(pipeline) -> dict[str, np.ndarray]:
    """A fitted ``Pipeline([("prep", ColumnTransformer), ("model", estimator)])`` -> arrays."""
    if not hasattr(pipeline, "steps") or len(pipeline.steps) != 2:
        raise Unsupported("a pipeline other than preprocessor + model")
    prep, model = pipeline[0], pipeline[-1]
    arrays = _compile_preprocessor(prep)
    kind = type(model).__name__
    if list(getattr(model, "classes_", [])) != [0, 1]:
        raise Unsupported("classes other than [0, 1]")
    if kind == "LogisticRegression":
        arrays.update(kind=np.array("linear"), coef=model.coef_[0].astype(np.float64))
        arrays["intercept"] = np.array(float(model.intercept_[0]))
    elif kind == "RandomForestClassifier":
        trees = []
        for estimator in model.estimators_:
            value = estimator.tree_.value[:, 0, :]
            total = value.sum(axis=1)
            trees.append(_sklearn_tree(estimator, value[:, 1] / np.where(total == 0, 1.0, total)))
        arrays.update(kind=np.array("forest"), **_prefixed("tree_", _stack_trees(trees)))
        # Trees compare float32 inputs with their thresholds (scikit-learn's tree dtype).
        arrays["float32_inputs"] = np.array(True)
    elif kind == "HistGradientBoostingClassifier":
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
        arrays.update(kind=np.array("boosting"), **_prefixed("tree_", _stack_trees(trees)))
        arrays["baseline"] = np.array(float(np.ravel(model._baseline_prediction)[0]))
        arrays["float32_inputs"] = np.array(False)
    else:
        raise Unsupported(f"model {kind}")
    return arrays


class CompiledClassifier:
    """Probability of leaving from validated codes, as the compiled arrays say."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.kind = str(arrays["kind"])
        if self.kind == "linear":
            self.coef, self.intercept = arrays["coef"], float(arrays["intercept"])

    def transform(self, codes: np.ndarray) -> np.ndarray:
        return transform(self.arrays, codes)

    def logit(self, codes: np.ndarray) -> np.ndarray:
        """The linear model's log-odds (what its attributions add up to)."""
        return self.transform(codes) @ self.coef + self.intercept

    def probability(self, codes: np.ndarray) -> np.ndarray:
        if self.kind == "linear":
            return expit(self.logit(codes))
        X = self.transform(codes)
        if bool(self.arrays["float32_inputs"]):
            X = X.astype(np.float32).astype(np.float64)
        leaves = walk(self.arrays, X, "tree_")
        if self.kind == "forest":
            return leaves.mean(axis=1)
        return expit(leaves.sum(axis=1) + float(self.arrays["baseline"]))


# --- the isolation forest -------------------------------------------------------------------------


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
