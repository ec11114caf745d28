"""The contract every caller meets: the feature schema and its validation, the outputs, the errors,
and what the trust signals mean (attrition.contract.trust). Light to import: the server, the batch
job and the clients all read it."""

from attrition.contract.errors import AttritionError, BundleError, InvalidInput
from attrition.contract.outputs import ALL_OUTPUTS, DRIFT_OUTPUTS, EXPLANATION, ROW_OUTPUTS, Output
from attrition.contract.schema import CATEGORICAL, FEATURES, LABELS, NUMERIC, encode, frame_codes
from attrition.contract.trust import DriftReport, Explain

__all__ = [
    "ALL_OUTPUTS",
    "CATEGORICAL",
    "DRIFT_OUTPUTS",
    "EXPLANATION",
    "FEATURES",
    "LABELS",
    "NUMERIC",
    "ROW_OUTPUTS",
    "AttritionError",
    "BundleError",
    "DriftReport",
    "Explain",
    "InvalidInput",
    "Output",
    "encode",
    "frame_codes",
]
