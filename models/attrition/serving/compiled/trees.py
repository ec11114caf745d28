"""Tree ensembles as one flat node table, walked for all rows and trees at once."""

from __future__ import annotations

import numpy as np


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
