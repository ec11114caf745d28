"""The maths a bundle serves, whichever trust backend fitted it: compiled scoring of the classifier
and the isolation forest, the batch drift test, and deterministic attributions. Needs numpy, scipy
and (for tree attributions) shap; never alibi."""

from attrition.serving.compiled import CompiledClassifier, CompiledIsolationForest, Unsupported
from attrition.serving.drift import DriftTest

__all__ = ["CompiledClassifier", "CompiledIsolationForest", "DriftTest", "Unsupported"]
