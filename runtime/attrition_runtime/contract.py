"""The V2 (Open Inference Protocol) contract of the server, translated with MLServer's codecs: one
named input per feature in, the outputs of :mod:`attrition.contract.outputs` out. Decoding checks the
request's shape before anything reaches the model and raises
:class:`attrition.contract.errors.InvalidInput`, naming the input and what was expected."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import MetadataTensor, Parameters, RequestInput, ResponseOutput

from attrition.contract.errors import InvalidInput
from attrition.contract.outputs import ALL_OUTPUTS, DRIFT_OUTPUTS, EXPLANATION, ROW_OUTPUTS, Output
from attrition.contract.schema import CATEGORICAL, FEATURES, NUMERIC
from attrition.contract.trust import DriftReport, Explain
from attrition.inference_log.keys import ENTITY_INPUT
from attrition_runtime.wire import (
    CATEGORICAL_DATATYPE,
    ENTITY_DATATYPES,
    NUMERIC_ACCEPTED,
    NUMERIC_DATATYPE,
    V2_DATATYPES,
)

#: Values of the request parameter ``explain``, as JSON gives them (case-insensitive strings).
EXPLAIN_VALUES: dict[object, Explain] = {
    False: Explain.NONE,
    "false": Explain.NONE,
    "none": Explain.NONE,
    "": Explain.NONE,
    True: Explain.ATTRIBUTIONS,
    "true": Explain.ATTRIBUTIONS,
    "attributions": Explain.ATTRIBUTIONS,
    "anchors": Explain.ANCHORS,
}


def input_metadata() -> list[MetadataTensor]:
    """Every input with its datatype, shape and, for categoricals, the allowed values."""
    tensors = []
    for name in FEATURES:
        if name in CATEGORICAL:
            params = Parameters(content_type="str", allowed_values=list(CATEGORICAL[name]))
            datatype = CATEGORICAL_DATATYPE
        else:
            params = Parameters(content_type="np", minimum=NUMERIC[name].low, maximum=NUMERIC[name].high)
            datatype = NUMERIC_DATATYPE
        tensors.append(MetadataTensor(name=name, datatype=datatype, shape=[-1], parameters=params))
    tensors.append(
        MetadataTensor(
            name=ENTITY_INPUT,
            datatype=ENTITY_DATATYPES[0],
            shape=[-1],
            parameters=Parameters(
                content_type="str",
                optional=True,
                accepted_datatypes=list(ENTITY_DATATYPES),
                description="the caller's employee id, never a feature: stored in the inference log "
                "only as a keyed hash",
            ),
        )
    )
    return tensors


def output_metadata() -> list[MetadataTensor]:
    """Every output of :mod:`attrition.contract.outputs` with its V2 datatype and shape."""
    tensors = []
    for output in ALL_OUTPUTS:
        params = Parameters(content_type="str", format="json") if output is EXPLANATION else None
        tensors.append(
            MetadataTensor(
                name=output.name,
                datatype=V2_DATATYPES[output.kind],
                shape=[output.length or -1],
                parameters=params,
            )
        )
    return tensors


def _parameter(parameters: Parameters | None, name: str, default: object) -> object:
    return (parameters.model_extra or {}).get(name, default) if parameters else default


def explain_mode(parameters: Parameters | None) -> Explain:
    value = _parameter(parameters, "explain", False)
    key = value.lower() if isinstance(value, str) else value
    if not isinstance(key, bool | str) or key not in EXPLAIN_VALUES:
        raise InvalidInput("parameters.explain", f'got {value!r}; expected true, false or "anchors"')
    return EXPLAIN_VALUES[key]


def drift_requested(parameters: Parameters | None) -> bool:
    """Request parameter ``drift`` (default true): false skips the batch drift test."""
    value = _parameter(parameters, "drift", True)
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        value = value.lower() == "true"
    if not isinstance(value, bool):
        raise InvalidInput("parameters.drift", f"got {value!r}; expected true or false")
    return value


def _rows(request_input: RequestInput) -> int:
    shape = list(request_input.shape)
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        if shape[0] < 0:
            raise InvalidInput(request_input.name, f"shape {shape} has a negative dimension")
        return shape[0]
    raise InvalidInput(request_input.name, f"shape {shape} not supported; expected [n] or [n, 1]")


def decode_inputs(inputs: list[RequestInput], max_rows: int) -> dict[str, np.ndarray]:
    """V2 inputs -> one array of raw values per feature (the schema's own checks come next); the
    optional ``employee_id`` input is checked here but decoded by :func:`decode_entities`."""
    if not inputs:
        raise InvalidInput("inputs", f"empty; expected one input per feature: {list(FEATURES)}")
    by_name: dict[str, RequestInput] = {}
    for request_input in inputs:
        if request_input.name == ENTITY_INPUT:
            continue
        if request_input.name not in CATEGORICAL and request_input.name not in NUMERIC:
            raise InvalidInput(
                request_input.name,
                f"unknown input; expected only {list(FEATURES)} and optionally {ENTITY_INPUT!r}",
            )
        if request_input.name in by_name:
            raise InvalidInput(request_input.name, "given twice")
        by_name[request_input.name] = request_input
    missing = [name for name in FEATURES if name not in by_name]
    if missing:
        raise InvalidInput(missing[0], f"missing input (all missing: {missing})")
    rows = {name: _rows(by_name[name]) for name in FEATURES}
    n = rows[FEATURES[0]]
    for name, count in rows.items():
        if count != n:
            raise InvalidInput(
                name, f"has {count} rows but {FEATURES[0]} has {n}; every input needs the same"
            )
    if n == 0:
        raise InvalidInput("inputs", "empty batch; expected at least one row")
    if n > max_rows:
        raise InvalidInput("inputs", f"batch of {n} rows exceeds the maximum of {max_rows}; split it")
    return {name: _decode(by_name[name], n) for name in FEATURES}


def decode_entities(inputs: list[RequestInput], n: int) -> list | None:
    """The optional ``employee_id`` input: one id per row (str or int), or None when not sent."""
    given = [request_input for request_input in inputs if request_input.name == ENTITY_INPUT]
    if not given:
        return None
    if len(given) > 1:
        raise InvalidInput(ENTITY_INPUT, "given twice")
    request_input = given[0]
    datatype = getattr(request_input.datatype, "value", request_input.datatype)
    if datatype not in ENTITY_DATATYPES:
        raise InvalidInput(ENTITY_INPUT, f"datatype {datatype}; expected one of {list(ENTITY_DATATYPES)}")
    if _rows(request_input) != n:
        raise InvalidInput(ENTITY_INPUT, f"has {_rows(request_input)} rows but the features have {n}")
    try:
        if datatype == CATEGORICAL_DATATYPE:
            values = list(StringCodec.decode_input(request_input))
        else:
            values = NumpyCodec.decode_input(request_input).reshape(-1).tolist()
    except Exception as exc:  # MLServer's codecs raise anything on malformed data
        raise InvalidInput(ENTITY_INPUT, f"data does not match datatype {datatype}: {exc}") from exc
    if len(values) != n:
        raise InvalidInput(ENTITY_INPUT, f"shape says {n} rows but data has {len(values)} values")
    if any(not str(value).strip() for value in values):
        raise InvalidInput(ENTITY_INPUT, "an empty id; send one id per row")
    return values


def _decode(request_input: RequestInput, n: int) -> np.ndarray:
    name = request_input.name
    datatype = getattr(request_input.datatype, "value", request_input.datatype)
    categorical = name in CATEGORICAL
    if categorical and datatype != CATEGORICAL_DATATYPE:
        raise InvalidInput(name, f"datatype {datatype}; expected {CATEGORICAL_DATATYPE} (a category name)")
    if not categorical and datatype not in NUMERIC_ACCEPTED:
        raise InvalidInput(
            name, f"datatype {datatype}; expected {NUMERIC_DATATYPE} (or {', '.join(NUMERIC_ACCEPTED[1:])})"
        )
    try:
        values = _values(request_input, categorical)
    except Exception as exc:  # malformed data for the declared datatype: MLServer's codecs raise anything
        raise InvalidInput(
            name, f"data does not match datatype {datatype} and shape {list(request_input.shape)}: {exc}"
        ) from exc
    values = values.reshape(-1)
    if len(values) != n:
        raise InvalidInput(name, f"shape says {n} rows but data has {len(values)} values")
    return values


def _values(request_input: RequestInput, categorical: bool) -> np.ndarray:
    data = getattr(request_input.data, "root", request_input.data)
    if isinstance(data, np.ndarray) and not categorical:  # binary tensor data, decoded at the REST edge
        return data.astype("float64")
    if categorical:
        return np.asarray(StringCodec.decode_input(request_input), dtype=object)
    return NumpyCodec.decode_input(request_input).astype("float64")


def encode_scores(scores: Mapping[str, np.ndarray]) -> list[ResponseOutput]:
    """The per-row outputs, in the order of ROW_OUTPUTS."""
    return [_encode(output, scores[output.name]) for output in ROW_OUTPUTS]


def encode_drift(report: DriftReport) -> list[ResponseOutput]:
    values = {
        "is_drift": np.array([report.is_drift]),
        "drift_feature": list(FEATURES),
        "drift_p_value": np.array([report.p_values[f] for f in FEATURES], dtype="float64"),
    }
    outputs = [_encode(output, values[output.name]) for output in DRIFT_OUTPUTS]
    outputs[0].parameters = Parameters(threshold=report.threshold, rows=report.rows, drifted=report.drifted)
    return outputs


def encode_explanations(explanations: list[dict]) -> ResponseOutput:
    return _encode(EXPLANATION, [json.dumps(e, allow_nan=False) for e in explanations])


def _encode(output: Output, values) -> ResponseOutput:
    if output.kind == "str":
        encoded = StringCodec.encode_output(output.name, [str(v) for v in values])
    else:
        encoded = NumpyCodec.encode_output(output.name, np.asarray(values, dtype=output.kind))
    encoded.shape = [len(values)]  # the codecs say [n, 1] for a vector; every output of ours is [n]
    return encoded
