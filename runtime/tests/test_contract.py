"""The V2 codec in process, with MLServer's own request types: what a request becomes before the model
sees it, which field a refusal names, and one output contract shared by the MLflow signature, the V2
metadata and the encoders.

Imports mlserver, so it runs in a pytest process of its own (MLServer's and tritonclient's gRPC stubs
clash, and tests/test_client_side.py checks that the main session never imports mlserver):
``.venv/bin/python -m pytest runtime/tests -p no:cacheprovider``.
"""

from __future__ import annotations

import copy
import io
import logging
from pathlib import Path

import numpy as np
import pytest
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import InferenceRequest, Parameters, RequestInput

from attrition.batch import RESULT_TYPE
from attrition.bundle import signature
from attrition.contract import outputs
from attrition.contract.errors import InvalidInput
from attrition.contract.schema import CATEGORICAL, FEATURES, encode
from attrition.contract.trust import DriftReport, Explain
from attrition_runtime import contract
from attrition_runtime.client import EXAMPLE_EMPLOYEE, v2_request
from attrition_runtime.runtime import InvalidRequest, RedactRejectedInput
from attrition_runtime.settings import RuntimeSettings
from attrition_runtime.wire import V2_DATATYPES
from attrition_tools.bad_requests import BAD_REQUESTS, edit

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MAX_ROWS = RuntimeSettings().max_batch_rows


def _request(body: dict) -> InferenceRequest:
    return InferenceRequest(
        inputs=[RequestInput(**tensor) for tensor in body["inputs"]],
        parameters=Parameters(**body["parameters"]) if "parameters" in body else None,
    )


def _decode(request: InferenceRequest) -> tuple[np.ndarray, Explain, bool]:
    """What runtime.AttritionRuntime.decode does with a request, without a loaded model."""
    explain = contract.explain_mode(request.parameters)
    drift = contract.drift_requested(request.parameters)
    return encode(contract.decode_inputs(request.inputs, MAX_ROWS)), explain, drift


# --- decoding ----------------------------------------------------------------------------------------


def test_a_valid_request_decodes_to_one_array_per_feature():
    rows = [EXAMPLE_EMPLOYEE, {**EXAMPLE_EMPLOYEE, "Age": 30.0, "OverTime": "No"}]
    columns = contract.decode_inputs(_request(v2_request(rows)).inputs, MAX_ROWS)
    assert list(columns) == list(FEATURES)
    for name, values in columns.items():
        assert values.shape == (2,), name
        assert values.tolist() == [row[name] for row in rows], name
        assert values.dtype == (object if name in CATEGORICAL else np.float64), name
    codes, explain, drift = _decode(_request(v2_request(rows)))
    assert codes.shape == (2, len(FEATURES)) and (explain, drift) == (Explain.NONE, True)
    assert codes[1, FEATURES.index("Age")] == 30.0
    assert codes[1, FEATURES.index("OverTime")] == CATEGORICAL["OverTime"].index("No")


def test_bytes_and_integer_tensors_decode_to_the_same_codes():
    """gRPC hands BYTES over as bytes; clients may send whole numbers as INT32."""
    body = v2_request([EXAMPLE_EMPLOYEE])
    expected = _decode(_request(copy.deepcopy(body)))[0]
    for tensor in body["inputs"]:
        if tensor["datatype"] == "BYTES":
            tensor["data"] = [value.encode() for value in tensor["data"]]
        elif tensor["name"] == "Age":
            tensor.update(datatype="INT32", data=[41])
    np.testing.assert_array_equal(_decode(_request(body))[0], expected)


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_are_refused_naming_the_field(case):
    change, field = BAD_REQUESTS[case]
    request = _request(change(v2_request([EXAMPLE_EMPLOYEE])))
    with pytest.raises(InvalidInput) as error:
        _decode(request)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ")
    if case == "batch over the maximum":
        assert "maximum" in str(error.value)


def test_employee_id_is_optional_never_a_feature_and_checked():
    rows = [EXAMPLE_EMPLOYEE, EXAMPLE_EMPLOYEE]
    for ids in ([1042, 1043], ["E-1042", "E-1043"]):
        request = _request(v2_request(rows, employee_ids=ids))
        assert list(contract.decode_inputs(request.inputs, MAX_ROWS)) == list(FEATURES)
        assert contract.decode_entities(request.inputs, 2) == ids
    assert contract.decode_entities(_request(v2_request(rows)).inputs, 2) is None
    for ids, edit_tensor, needle in (
        ([1, 2], {"datatype": "FP64"}, "datatype FP64"),
        ([1], {"shape": [1]}, "has 1 rows"),
        (["", "x"], {}, "empty id"),
    ):
        body = v2_request(rows, employee_ids=ids)
        body["inputs"][-1].update(edit_tensor)
        with pytest.raises(InvalidInput, match=needle) as refused:
            contract.decode_entities(_request(body).inputs, 2)
        assert refused.value.field == "employee_id"
    metadata = {tensor.name: tensor for tensor in contract.input_metadata()}
    assert metadata["employee_id"].parameters.optional is True and len(metadata) == len(FEATURES) + 1


# --- request parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Explain.NONE),  # not given
        (False, Explain.NONE),
        ("false", Explain.NONE),
        ("none", Explain.NONE),
        ("", Explain.NONE),
        (True, Explain.ATTRIBUTIONS),
        ("true", Explain.ATTRIBUTIONS),
        ("TRUE", Explain.ATTRIBUTIONS),
        ("attributions", Explain.ATTRIBUTIONS),
        ("anchors", Explain.ANCHORS),
        ("Anchors", Explain.ANCHORS),
    ],
)
def test_explain_parameter_parses(value, expected):
    parameters = None if value is None else Parameters(explain=value)
    assert contract.explain_mode(parameters) is expected


#: 1 and 0.0 once passed as True / False (equal dict keys); a list or an object raised TypeError (a 500).
@pytest.mark.parametrize("value", ["everything", "yes", "anchor", None, 1, 0, 1.0, [True], {"anchors": True}])
def test_explain_parameter_refuses_others(value):
    with pytest.raises(InvalidInput) as error:
        contract.explain_mode(Parameters(explain=value))
    assert error.value.field == "parameters.explain"
    assert str(error.value).startswith("parameters.explain: ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), (True, True), (False, False), ("true", True), ("TRUE", True), ("False", False)],
)
def test_drift_parameter_parses(value, expected):
    parameters = None if value is None else Parameters(drift=value)
    assert contract.drift_requested(parameters) is expected


@pytest.mark.parametrize("value", ["sometimes", "yes", "1", 1, 0, None, "anchors"])
def test_drift_parameter_refuses_others(value):
    with pytest.raises(InvalidInput) as error:
        contract.drift_requested(Parameters(drift=value))
    assert error.value.field == "parameters.drift"
    assert str(error.value).startswith("parameters.drift: ")


# --- one output contract ---------------------------------------------------------------------------

#: The outputs clients read, pinned: (name, kind, values per request or None for one per row).
#: Changing the contract is a breaking change for clients, made here on purpose.
PINNED = (
    ("probability", "float64", None),
    ("prediction", "str", None),
    ("outlier_score", "float64", None),
    ("is_outlier", "bool", None),
    ("is_drift", "bool", 1),
    ("drift_feature", "str", len(FEATURES)),
    ("drift_p_value", "float64", len(FEATURES)),
    ("explanation", "str", None),
)
#: MLflow's name for each kind (mlflow.types.DataType).
MLFLOW_TYPES = {"float64": "double", "str": "string", "bool": "boolean"}
ROWS = 3


def _encoded() -> list:
    """What the encoders put on the wire for a small response."""
    scores = {
        "probability": np.array([0.1, 0.5, 0.9]),
        "prediction": np.array(["No", "Yes", "Yes"]),
        "outlier_score": np.array([-0.1, 0.0, 0.2]),
        "is_outlier": np.array([False, False, True]),
    }
    p_values = {f: 0.5 for f in FEATURES} | {"OverTime": 1e-9}
    report = DriftReport(True, p_values, {f: 0.1 for f in FEATURES}, 0.05 / len(FEATURES), ROWS)
    explanations = [{"method": "LinearShap", "attributions": {"Age": 0.25}}] * ROWS
    return [
        *contract.encode_scores(scores),
        *contract.encode_drift(report),
        contract.encode_explanations(explanations),
    ]


def _views() -> dict[str, list[tuple]]:
    """Each place the output contract is stated, as tuples."""
    return {
        "attrition.contract.outputs": [(o.name, o.kind, o.length) for o in outputs.ALL_OUTPUTS],
        "row outputs": [o.name for o in outputs.ROW_OUTPUTS],
        "MLflow signature": [(c.name, c.type.name) for c in signature().outputs.inputs],
        "Spark result type": [tuple(field.split()) for field in RESULT_TYPE.split(", ")],
        "V2 metadata": [(t.name, t.datatype, list(t.shape)) for t in contract.output_metadata()],
        "V2 encoders": [(r.name, r.datatype, list(r.shape)) for r in _encoded()],
    }


def _disagreements(views: dict[str, list[tuple]]) -> list[str]:
    declared = views["attrition.contract.outputs"]
    row_outputs = [(n, k, length) for n, k, length in declared if n in views["row outputs"]]
    expected = {
        "attrition.contract.outputs": list(PINNED),
        "row outputs": [n for n, _, length in PINNED if length is None and n != outputs.EXPLANATION.name],
        "MLflow signature": [(n, MLFLOW_TYPES[k]) for n, k, _ in row_outputs],
        "Spark result type": [(n, MLFLOW_TYPES[k]) for n, k, _ in row_outputs],
        "V2 metadata": [(n, V2_DATATYPES[k], [length or -1]) for n, k, length in declared],
        "V2 encoders": [(n, V2_DATATYPES[k], [length or ROWS]) for n, k, length in declared],
    }
    return [
        f"{source}: {views[source]} != {expected[source]}"
        for source in expected
        if views[source] != expected[source]
    ]


def test_signature_metadata_and_encoders_state_the_same_outputs():
    assert (*outputs.ROW_OUTPUTS, *outputs.DRIFT_OUTPUTS, outputs.EXPLANATION) == outputs.ALL_OUTPUTS
    assert _disagreements(_views()) == []


def _rename(entry: tuple) -> tuple:
    return ("renamed", *entry[1:])


def _retype(entry: tuple) -> tuple:
    return (entry[0], "FP32" if entry[1] != "FP32" else "FP64", *entry[2:])


def _reshape(entry: tuple) -> tuple:
    return (*entry[:2], [7])


@pytest.mark.parametrize(
    ("source", "index", "mutate"),
    [
        ("attrition.contract.outputs", 0, _rename),
        ("attrition.contract.outputs", 5, lambda e: (e[0], e[1], 29)),
        ("MLflow signature", 3, lambda e: (e[0], "string")),
        ("MLflow signature", 1, _rename),
        ("Spark result type", 0, lambda e: (e[0], "float")),
        ("Spark result type", 2, _rename),
        ("V2 metadata", 0, _retype),
        ("V2 metadata", 6, _reshape),
        ("V2 metadata", 7, _rename),
        ("V2 encoders", 3, _retype),
        ("V2 encoders", 4, _reshape),
        ("V2 encoders", 2, _rename),
    ],
)
def test_a_change_in_any_one_place_is_caught(source, index, mutate):
    """The agreement test above is not vacuous: each statement of the contract is checked."""
    views = _views()
    views[source][index] = mutate(views[source][index])
    assert _disagreements(views)
    views = _views()
    del views[source][index]
    assert _disagreements(views)


def test_encoders_carry_the_values():
    encoded = {output.name: output for output in _encoded()}
    np.testing.assert_array_equal(NumpyCodec.decode_output(encoded["probability"]).ravel(), [0.1, 0.5, 0.9])
    assert StringCodec.decode_output(encoded["prediction"]) == ["No", "Yes", "Yes"]
    assert NumpyCodec.decode_output(encoded["is_outlier"]).ravel().tolist() == [False, False, True]
    assert StringCodec.decode_output(encoded["drift_feature"]) == list(FEATURES)
    drift = encoded["is_drift"].parameters.model_extra
    assert drift["drifted"] == ["OverTime"] and drift["rows"] == ROWS
    assert drift["threshold"] == pytest.approx(0.05 / len(FEATURES))


# --- refusals on the server side -------------------------------------------------------------------


def _refusal(value: float = -4.25) -> InvalidRequest:
    try:
        _decode(_request(edit("Age", data=[value])(v2_request([EXAMPLE_EMPLOYEE]))))
    except InvalidInput as error:
        return InvalidRequest(error)
    raise AssertionError("the request was accepted")


def test_invalid_request_is_a_400_that_keeps_the_field():
    refusal = _refusal()
    assert refusal.status_code == 400
    assert refusal.field == "Age"
    assert str(refusal).startswith("Age: ")


def test_redaction_names_the_field_not_the_value():
    """The worker logs failures with message and traceback; a refused value is personal data."""
    stream = io.StringIO()
    log = logging.getLogger("attrition.test_contract.redact")
    log.propagate = False
    log.addHandler(logging.StreamHandler(stream))
    log.addFilter(RedactRejectedInput())
    refusal = _refusal(-4.25)
    assert "-4.25" in str(refusal)  # there is something to redact
    try:
        raise refusal
    except InvalidRequest:
        log.exception("inference failed: %s", refusal)
    try:
        raise ValueError("not a refusal: 123.5")
    except ValueError:
        log.exception("other failure")
    lines = stream.getvalue()
    assert "rejected invalid input (HTTP 400) in field 'Age'" in lines
    assert "-4.25" not in lines and "Traceback" in lines  # ...only for the other failure
    assert lines.count("Traceback") == 1 and "not a refusal: 123.5" in lines
