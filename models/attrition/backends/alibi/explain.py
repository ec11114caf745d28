"""The alibi trust backend's explainers: per-feature attributions (TreeShap for tree ensembles,
KernelShap on the log-odds otherwise) summed back to the 30 original features, and AnchorTabular rules
on demand. Serving answers attributions with attrition.serving.attributions (exact, deterministic; tests show
the agreement); these are the reference, and anchors.

Anchors can take seconds to minutes on a borderline row and grow a large sampling cache, so each
anchor request runs in a forked child process: the time budget is enforced by killing the child,
and the cache dies with it.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import numpy as np
import pandas as pd
from alibi.explainers import AnchorTabular, KernelShap, TreeShap
from alibi.saving import load_explainer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline

from attrition.contract.schema import CATEGORICAL, FEATURES, from_codes
from attrition.serving.compiled.calibration import base_pipeline

#: Samples per KernelShap explanation (it estimates by sampling; the served attributions are exact).
KERNEL_SAMPLES = 2048
ANCHOR_PRECISION = 0.95
TREE_MODELS = (RandomForestClassifier, HistGradientBoostingClassifier)


class LogOddsOfLeaving:
    """Ordinal codes -> log-odds of leaving, the form KernelShap perturbs: on this scale a linear model
    is additive in its features, and KernelShap (identity link) converges to the exact values."""

    def __init__(self, classifier: Pipeline):
        self.classifier = classifier

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        probability = self.classifier.predict_proba(from_codes(codes))[:, 1]
        return np.log(probability / (1 - probability))


class PredictedLabel:
    """Ordinal codes -> 0/1 at the bundle's decision threshold, the form AnchorTabular perturbs."""

    def __init__(self, classifier: Pipeline, threshold: float):
        self.classifier = classifier
        self.threshold = threshold

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        return (self.classifier.predict_proba(from_codes(codes))[:, 1] >= self.threshold).astype(int)


def is_tree_model(classifier: Pipeline) -> bool:
    return isinstance(classifier[-1], TREE_MODELS)


def _transformed_layout(classifier: Pipeline) -> tuple[list[str], list[int], list[int]]:
    """Original feature per column block of the preprocessor's output, and the one-hot blocks."""
    prep = classifier[0]
    names, starts, widths, column = [], [], [], 0
    for _, transformer, columns in prep.transformers_:
        if transformer == "drop" or not len(columns):
            continue
        encoder = transformer if hasattr(transformer, "categories_") else None
        for i, name in enumerate(columns):
            width = len(encoder.categories_[i]) if encoder is not None else 1
            if encoder is not None:
                starts.append(column)
                widths.append(width)
            names.append(name)
            column += width
    return names, starts, widths


def _dense(matrix) -> np.ndarray:
    """The one-hot encoder may hand back a sparse matrix; shap's tree explainer wants dense float64."""
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype="float64")


def fit_attributions(classifier: Pipeline, background: np.ndarray, seed: int = 0) -> KernelShap | TreeShap:
    """TreeShap for trees; KernelShap on the log-odds against ``background`` rows otherwise (of the
    pipeline under a calibration map: the served attributions map them through it)."""
    classifier = base_pipeline(classifier)
    if is_tree_model(classifier):
        explainer = TreeShap(classifier[-1], model_output="raw", task="classification")
        # Path-dependent (no background): with shap 0.43 and this scikit-learn, interventional TreeShap
        # fails its own additivity check on a random forest (measured); path-dependent adds up exactly.
        explainer.fit()
        return explainer
    explainer = KernelShap(
        LogOddsOfLeaving(classifier),
        link="identity",
        feature_names=list(FEATURES),
        task="regression",
        seed=seed,
    )
    explainer.fit(background, summarise_background=False)
    return explainer


def fit_anchors(
    classifier: Pipeline, threshold: float, train_codes: np.ndarray, seed: int = 0
) -> AnchorTabular:
    categorical_names = {i: list(CATEGORICAL[f]) for i, f in enumerate(FEATURES) if f in CATEGORICAL}
    explainer = AnchorTabular(
        PredictedLabel(classifier, threshold), list(FEATURES), categorical_names=categorical_names, seed=seed
    )
    explainer.fit(train_codes, disc_perc=(25, 50, 75))
    return explainer


def save(explainer: KernelShap | TreeShap | AnchorTabular, path: Path) -> None:
    """Save right after fit: an AnchorTabular that has explained keeps a cache of hundreds of MB."""
    explainer.save(str(path))


def load_attributions(path: Path, classifier: Pipeline) -> KernelShap | TreeShap:
    classifier = base_pipeline(classifier)
    predictor = classifier[-1] if is_tree_model(classifier) else LogOddsOfLeaving(classifier)
    return load_explainer(str(path), predictor=predictor)


def load_anchors(path: Path, classifier: Pipeline, threshold: float) -> AnchorTabular:
    return load_explainer(str(path), predictor=PredictedLabel(classifier, threshold))


def attributions(explainer: KernelShap | TreeShap, classifier: Pipeline, codes: np.ndarray) -> list[dict]:
    """Per row: the contribution of each original feature to the log-odds (KernelShap) or to the raw
    tree output (TreeShap) of leaving, and the base value they add up from."""
    classifier = base_pipeline(classifier)
    if isinstance(explainer, TreeShap):
        names, starts, widths = _transformed_layout(classifier)
        transformed = _dense(classifier[0].transform(from_codes(codes)))
        result = explainer.explain(
            transformed, summarise_result=True, cat_vars_start_idx=starts, cat_vars_enc_dim=widths
        )
        order = names
        scale = "probability" if isinstance(classifier[-1], RandomForestClassifier) else "log-odds"
    else:
        result = explainer.explain(codes, nsamples=KERNEL_SAMPLES, silent=True)
        order, scale = list(FEATURES), "log-odds"
    values = np.asarray(result.shap_values[-1])  # the "leaves" class
    base = float(np.ravel(result.expected_value)[-1])
    out = []
    for row in values:
        contributions = dict(zip(order, map(float, row), strict=True))
        out.append(
            {
                "method": type(explainer).__name__,
                "scale": scale,
                "base_value": base,
                "attributions": {f: round(contributions[f], 6) for f in FEATURES},
            }
        )
    return out


def _anchor_worker(explainer: AnchorTabular, codes: np.ndarray, conn) -> None:
    for row in codes:
        result = explainer.explain(row, threshold=ANCHOR_PRECISION)
        conn.send(
            {
                "anchor": list(result.anchor),
                "precision": float(np.ravel(result.precision)[0]),
                "coverage": float(result.coverage),
            }
        )
    conn.close()


def anchors(explainer: AnchorTabular, codes: np.ndarray, budget_s: float) -> list[dict]:
    """Anchor rules for each row, computed in a child process that is killed when the budget runs out;
    rows not reached in time get ``{"anchor": None, "timed_out": True}``."""
    context = multiprocessing.get_context("fork")  # the child inherits the loaded model: no reload
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_anchor_worker, args=(explainer, codes, sender), daemon=True)
    deadline = time.monotonic() + budget_s
    child.start()
    sender.close()
    results: list[dict] = []
    try:
        while len(results) < len(codes):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not receiver.poll(remaining):
                break
            try:
                results.append(receiver.recv())
            except EOFError:  # the child died
                break
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    timed_out = {"anchor": None, "timed_out": True, "budget_s": budget_s}
    return results + [dict(timed_out) for _ in range(len(codes) - len(results))]


def attributions_frame(explanations: list[dict]) -> pd.DataFrame:
    """Rows x features table of attributions, for plots."""
    return pd.DataFrame([e["attributions"] for e in explanations])
