"""The outputs of the model, defined once: the MLflow signature, the V2 metadata, the V2 encoders
and the Spark result type all read this list (each maps ``kind`` to its own type names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from attrition.contract.schema import FEATURES

Kind = Literal["float64", "str", "bool"]
#: MLflow's column type for each kind, which is also its Spark SQL type name (the batch job's result).
MLFLOW_TYPES: dict[str, str] = {"float64": "double", "str": "string", "bool": "boolean"}


@dataclass(frozen=True)
class Output:
    name: str
    kind: Kind
    #: None: one value per row; an int: a fixed number of values per request (batch outputs).
    length: int | None = None
    doc: str = ""


#: One value per row, always present.
ROW_OUTPUTS: tuple[Output, ...] = (
    Output("probability", "float64", doc="probability of leaving"),
    Output("prediction", "str", doc="Yes when probability >= the bundle's decision threshold"),
    Output("outlier_score", "float64", doc="isolation-forest score (higher: more unusual)"),
    Output("is_outlier", "bool", doc="score above the training 99th percentile"),
)
#: One set per request, for batches tested for drift.
DRIFT_OUTPUTS: tuple[Output, ...] = (
    Output("is_drift", "bool", 1, "any feature drifted (Bonferroni over the 30 tests)"),
    Output("drift_feature", "str", len(FEATURES), "the features, in schema order"),
    Output("drift_p_value", "float64", len(FEATURES), "p-value per feature (K-S or chi-squared)"),
)
#: Only when a request asks for explanations: one JSON document per row.
EXPLANATION = Output("explanation", "str", doc="JSON per row: attributions (and the anchor rule)")

ALL_OUTPUTS: tuple[Output, ...] = (*ROW_OUTPUTS, *DRIFT_OUTPUTS, EXPLANATION)
#: The per-row outputs as a Spark struct type (what ``mlflow.pyfunc.spark_udf`` returns).
SPARK_RESULT_TYPE = ", ".join(f"{o.name} {MLFLOW_TYPES[o.kind]}" for o in ROW_OUTPUTS)
