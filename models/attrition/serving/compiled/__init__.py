"""A compiled form of the fitted scikit-learn estimators: the same numbers from plain numpy arrays,
without scikit-learn's per-call overhead (input validation, DataFrames, one Python loop per tree).

scikit-learn stays the source of truth: these arrays are read off the fitted pipeline and isolation
forest when the bundle is built, saved in it as ``compiled.npz`` (no pickle), and checked against
scikit-learn on the training rows before they are saved. tests/test_compiled.py shows equality
(max abs difference <= 1e-6, same labels and flags) on all 1,470 rows for every model family the
search can choose, and tests/test_calibrated.py for each under either calibration map. What cannot
be compiled raises :class:`Unsupported`, and the bundle then scores with scikit-learn and says why.

Hand-written rather than ONNX Runtime: the compiled scorer reads the ordinal codes the schema already
produces (no string tensors), runs in float64 exactly as scikit-learn does (ONNX tree ensembles run
in float32, which can flip a split), and adds no dependency to the image.
"""

from attrition.serving.compiled.base import Unsupported
from attrition.serving.compiled.calibration import base_pipeline, is_calibrated
from attrition.serving.compiled.classifier import CompiledClassifier, compile_classifier
from attrition.serving.compiled.families import FAMILIES, Family, family_of
from attrition.serving.compiled.isolation import CompiledIsolationForest, compile_isolation_forest
from attrition.serving.compiled.preprocess import column_features, transform
from attrition.serving.compiled.trees import WALK_ROWS, walk

__all__ = [
    "FAMILIES",
    "WALK_ROWS",
    "CompiledClassifier",
    "CompiledIsolationForest",
    "Family",
    "Unsupported",
    "base_pipeline",
    "column_features",
    "compile_classifier",
    "compile_isolation_forest",
    "family_of",
    "is_calibrated",
    "transform",
    "walk",
]
