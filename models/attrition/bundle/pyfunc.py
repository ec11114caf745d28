"""The bundle's MLflow face: the pyfunc model and its signature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from attrition.bundle.trust_bundle import TrustBundle
from attrition.contract.outputs import MLFLOW_TYPES, ROW_OUTPUTS
from attrition.contract.schema import CATEGORICAL, FEATURES, frame_codes
from attrition.contract.trust import ANCHOR_BUDGET_S, Explain


class AttritionModel(mlflow.pyfunc.PythonModel):
    """The pyfunc face of :class:`TrustBundle`.

    ``predict`` returns one row per employee. Batch drift is a property of the whole batch, which a
    pyfunc's per-row frame cannot hold, so with ``drift=True`` every row repeats the batch's verdict
    (``batch_is_drift``) and the drifted features (``batch_drifted_features``, comma-separated).
    """

    def load_context(self, context) -> None:
        self.bundle = TrustBundle(Path(context.artifacts["bundle"]))

    # The type hint is MLflow's documented way to say "a DataFrame, checked by the signature": MLflow
    # infers nothing from pd.DataFrame and warns about predict methods without a hint.
    def predict(
        self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        params = params or {}
        frame = pd.DataFrame(model_input)
        codes = frame_codes(frame)
        scores = self.bundle.score_codes(codes)
        out = pd.DataFrame({o.name: scores[o.name] for o in ROW_OUTPUTS}, index=frame.index)
        mode = Explain(str(params.get("explain", Explain.NONE)))
        if mode is not Explain.NONE:
            budget = float(params.get("anchor_budget_s", ANCHOR_BUDGET_S))
            out["explanation"] = [json.dumps(e) for e in self.bundle.explain_codes(codes, mode, budget)]
        if params.get("drift"):
            report = self.bundle.drift_codes(codes)
            out["batch_is_drift"] = report.is_drift
            out["batch_drifted_features"] = ",".join(report.drifted)
        return out


def signature():
    """Categoricals as strings; numerics as MLflow's ``Any``, because no MLflow column type accepts
    both the integers every HR export holds (int64 -> double is refused as unsafe) and floats: the
    bundle's own validation (attrition.contract.schema) then refuses what is not a finite number in
    the feature's domain, naming the field. Outputs and params as the output contract says."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import AnyType

    inputs = Schema([ColSpec("string" if f in CATEGORICAL else AnyType(), f) for f in FEATURES])
    outputs = Schema([ColSpec(MLFLOW_TYPES[o.kind], o.name) for o in ROW_OUTPUTS])
    params = ParamSchema(
        [
            ParamSpec("explain", "string", str(Explain.NONE)),
            ParamSpec("anchor_budget_s", "double", ANCHOR_BUDGET_S),
            ParamSpec("drift", "boolean", False),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)
