"""The V2 (Open Inference Protocol) contract of the server: one named input per feature, per-row
outputs, per-batch drift outputs. Decoding checks every input before anything reaches the model, and
names the input and what was expected when it refuses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.errors import InferenceError
from mlserver.types import MetadataTensor, Parameters, RequestInput, ResponseOutput

from attrition.bundle import OUTPUTS
from attrition.detectors import DriftReport
from attrition.schema import CATEGORICAL, FEATURES, NUMERIC
from attrition_runtime.client import CATEGORICAL_DATATYPE, EXPLANATION_OUTPUT, NUMERIC_DATATYPE

#: Numeric datatypes accepted and converted to FP64.
NUMERIC_ACCEPTED = ("FP64", "FP32", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8")
#: Values of the request parameter ``explain``.
EXPLAIN_VALUES = {
    False: "none",
    "false": "none",
    "none": "none",
    "": "none",
    True: "attributions",
    "true": "attributions",
    "attributions": "attributions",
    "anchors": "anchors",
}


def input_metadata() -> list[MetadataTensor]:
    """Every input with its datatype, shape and, for categoricals, the allowed values."""
    tensors = []
    for name in FEATURES:
        if name in CATEGORICAL:
            params = Parameters(content_type="str", allowed_values=list(CATEGORICAL[name]))
            tensors.append(
                MetadataTensor(name=name, datatype=CATEGORICAL_DATATYPE, shape=[-1], parameters=params)
            )
        else:
            spec = NUMERIC[name]
            params = Parameters(content_type="np", minimum=spec.low, maximum=spec.high)
            tensors.append(
                MetadataTensor(name=name, datatype=NUMERIC_DATATYPE, shape=[-1], parameters=params)
            )
    return tensors


def output_metadata() -> list[MetadataTensor]:
    per_row = {"probability": "FP64", "prediction": "BYTES", "outlier_score": "FP64", "is_outlier": "BOOL"}
    assert tuple(per_row) == OUTPUTS
    per_batch = {
        "is_drift": ("BOOL", [1]),
        "drift_feature": ("BYTES", [len(FEATURES)]),
        "drift_p_value": ("FP64", [len(FEATURES)]),
    }
    tensors = [MetadataTensor(name=n, datatype=d, shape=[-1]) for n, d in per_row.items()]
    tensors += [MetadataTensor(name=n, datatype=d, shape=s) for n, (d, s) in per_batch.items()]
    tensors.append(
        MetadataTensor(
            name=EXPLANATION_OUTPUT,
            datatype="BYTES",
            shape=[-1],
            parameters=Parameters(content_type="str", format="json"),
        )
    )
    return tensors


def explain_mode(parameters: Parameters | None) -> str:
    value = (parameters.model_extra or {}).get("explain", False) if parameters else False
    key = value.lower() if isinstance(value, str) else value
    if key not in EXPLAIN_VALUES:
        raise InferenceError(f'parameters.explain: got {value!r}; expected true, false or "anchors"')
    return EXPLAIN_VALUES[key]


def drift_requested(parameters: Parameters | None) -> bool:
    """Request parameter ``drift`` (default true): false skips the batch drift test (~20 ms a request)."""
    value = (parameters.model_extra or {}).get("drift", True) if parameters else True
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        value = value.lower() == "true"
    if not isinstance(value, bool):
        raise InferenceError(f"parameters.drift: got {value!r}; expected true or false")
    return value


def _rows(request_input: RequestInput) -> int:
    shape = list(request_input.shape)
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        if shape[0] < 0:
            raise InferenceError(f"{request_input.name}: shape {shape} has a negative dimension")
        return shape[0]
    raise InferenceError(f"{request_input.name}: shape {shape} not supported; expected [n] or [n, 1]")


def decode_inputs(inputs: list[RequestInput], max_rows: int) -> pd.DataFrame:
    """V2 inputs -> a frame of raw feature values (the schema's own validation comes next)."""
    if not inputs:
        raise InferenceError(f"inputs: empty; expected one input per feature: {list(FEATURES)}")
    by_name: dict[str, RequestInput] = {}
    for request_input in inputs:
        if request_input.name not in FEATURES:
            raise InferenceError(f"{request_input.name}: unknown input; expected only {list(FEATURES)}")
        if request_input.name in by_name:
            raise InferenceError(f"{request_input.name}: given twice")
        by_name[request_input.name] = request_input
    missing = [name for name in FEATURES if name not in by_name]
    if missing:
        raise InferenceError(f"{missing[0]}: missing input (all missing: {missing})")
    rows = {name: _rows(by_name[name]) for name in FEATURES}
    n = rows[FEATURES[0]]
    for name, count in rows.items():
        if count != n:
            raise InferenceError(
                f"{name}: has {count} rows but {FEATURES[0]} has {n}; every input needs the same"
            )
    if n == 0:
        raise InferenceError("inputs: empty batch; expected at least one row")
    if n > max_rows:
        raise InferenceError(f"inputs: batch of {n} rows exceeds the maximum of {max_rows}; split it")
    columns = {name: _decode(by_name[name], n) for name in FEATURES}
    return pd.DataFrame(columns)


def _decode(request_input: RequestInput, n: int) -> np.ndarray:
    name, datatype = request_input.name, request_input.datatype
    datatype = getattr(datatype, "value", datatype)
    try:
        if name in CATEGORICAL:
            if datatype != CATEGORICAL_DATATYPE:
                raise InferenceError(
                    f"{name}: datatype {datatype}; expected {CATEGORICAL_DATATYPE} (a category name)"
                )
            values = StringCodec.decode_input(request_input)
        else:
            if datatype not in NUMERIC_ACCEPTED:
                raise InferenceError(
                    f"{name}: datatype {datatype}; expected {NUMERIC_DATATYPE} "
                    f"(or {', '.join(NUMERIC_ACCEPTED[1:])}), a number"
                )
            values = NumpyCodec.decode_input(request_input).astype("float64")
    except InferenceError:
        raise
    except Exception as exc:  # malformed data for the declared datatype
        raise InferenceError(
            f"{name}: data does not match datatype {datatype} and shape {list(request_input.shape)}: {exc}"
        ) from exc
    values = np.asarray(values, dtype=object if name in CATEGORICAL else "float64").reshape(-1)
    if len(values) != n:
        raise InferenceError(f"{name}: shape says {n} rows but data has {len(values)} values")
    return values


def encode_scores(scores: pd.DataFrame) -> list[ResponseOutput]:
    return [
        _numbers("probability", scores["probability"].to_numpy("float64")),
        _strings("prediction", scores["prediction"].tolist()),
        _numbers("outlier_score", scores["outlier_score"].to_numpy("float64")),
        _numbers("is_outlier", scores["is_outlier"].to_numpy(bool)),
    ]


def encode_drift(report: DriftReport) -> list[ResponseOutput]:
    p_values = [report.p_values[f] for f in FEATURES]
    out = [
        _numbers("is_drift", np.array([report.is_drift])),
        _strings("drift_feature", list(FEATURES)),
        _numbers("drift_p_value", np.array(p_values, dtype="float64")),
    ]
    out[0].parameters = Parameters(threshold=report.threshold, rows=report.rows, drifted=report.drifted)
    return out


def encode_explanations(explanations: list[dict]) -> ResponseOutput:
    return _strings(EXPLANATION_OUTPUT, [json.dumps(e, allow_nan=False) for e in explanations])


def _numbers(name: str, values: np.ndarray) -> ResponseOutput:
    output = NumpyCodec.encode_output(name, values)
    output.shape = [len(values)]  # NumpyCodec says [n, 1] for a vector; every output of ours is [n]
    return output


def _strings(name: str, values: list[str]) -> ResponseOutput:
    output = StringCodec.encode_output(name, values)
    output.shape = [len(values)]  # StringCodec says [n, 1]; every output of ours is [n]
    return output
