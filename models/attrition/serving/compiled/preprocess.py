"""The ColumnTransformer, compiled: one-hot lookup tables and the affine map of the numeric columns."""

from __future__ import annotations

import numpy as np

from attrition.contract.schema import CATEGORICAL, FEATURES
from attrition.serving.compiled.base import Unsupported


def _unwrap(transformer) -> list:
    """A transformer or a Pipeline of transformers -> the list of steps."""
    return [step for _, step in transformer.steps] if hasattr(transformer, "steps") else [transformer]


def _onehot_block(encoder, columns, start: int, out: dict[str, list]) -> int:
    """Record a OneHotEncoder's columns from ``start``; returns the next free column."""
    if encoder.drop_idx_ is not None or getattr(encoder, "_infrequent_enabled", False):
        raise Unsupported("OneHotEncoder with drop or infrequent categories")
    for name, categories in zip(columns, encoder.categories_, strict=True):
        out["onehot_feature"].append(FEATURES.index(name))
        out["onehot_start"].append(start)
        out["onehot_lut"].append(_code_positions(name, categories))
        start += len(categories)
    return start


def _numeric_block(steps: list, columns, start: int, out: dict[str, list]) -> int:
    """Record a StandardScaler (optionally after numpy.log1p) from ``start``; returns the next column."""
    scaler = steps[-1]
    if type(scaler).__name__ != "StandardScaler":
        raise Unsupported(f"transformer {type(scaler).__name__}")
    if len(steps) > 2:
        raise Unsupported("a pipeline of more than two numeric steps")
    log = len(steps) == 2
    if log and (type(steps[0]).__name__ != "FunctionTransformer" or steps[0].func is not np.log1p):
        raise Unsupported("a function other than numpy.log1p before StandardScaler")
    mean = scaler.mean_ if scaler.with_mean else np.zeros(len(columns))
    scale = scaler.scale_ if scaler.with_std else np.ones(len(columns))
    for i, name in enumerate(columns):
        if name in CATEGORICAL:
            raise Unsupported(f"a scaled categorical column {name}")
        out["numeric_feature"].append(FEATURES.index(name))
        out["numeric_log"].append(log)
        out["numeric_mean"].append(mean[i])
        out["numeric_scale"].append(scale[i])
        out["numeric_column"].append(start)
        start += 1
    return start


def compile_preprocessor(prep) -> dict[str, np.ndarray]:
    """ColumnTransformer -> arrays. The output column order is scikit-learn's: each transformer's
    block in ``transformers_`` order."""
    if getattr(prep, "remainder", "drop") != "drop" and len(getattr(prep, "_remainder", (0, 0, []))[2]):
        raise Unsupported("ColumnTransformer remainder other than 'drop'")
    keys = ("onehot_feature", "onehot_start", "onehot_lut", "numeric_feature", "numeric_column")
    out: dict[str, list] = {k: [] for k in (*keys, "numeric_log", "numeric_mean", "numeric_scale")}
    column = 0
    for _, transformer, columns in prep.transformers_:
        if transformer == "drop" or not len(columns):
            continue
        steps = _unwrap(transformer)
        if len(steps) == 1 and type(steps[0]).__name__ == "OneHotEncoder":
            column = _onehot_block(steps[0], columns, column, out)
        else:
            column = _numeric_block(steps, columns, column, out)
    width = max(len(t) for t in out["onehot_lut"]) if out["onehot_lut"] else 1
    lut = np.full((len(out["onehot_lut"]), width), -1, dtype=np.int64)
    for i, positions in enumerate(out["onehot_lut"]):
        lut[i, : len(positions)] = positions
    arrays = {k: np.array(out[k], dtype=np.int64) for k in keys if k != "onehot_lut"}
    return {
        "n_columns": np.array(column),
        **arrays,
        "onehot_lut": lut,
        "numeric_log": np.array(out["numeric_log"], dtype=bool),
        "numeric_mean": np.array(out["numeric_mean"], dtype=np.float64),
        "numeric_scale": np.array(out["numeric_scale"], dtype=np.float64),
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
