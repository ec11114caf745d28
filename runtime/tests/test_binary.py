"""The binary tensor data extension in process: a binary body becomes the same columns as its JSON
twin, binary outputs read back as they were sent, and every length is checked before it is used.
Imports mlserver (see test_contract.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlserver.types import InferenceRequest

from attrition.contract.schema import CATEGORICAL, FEATURES
from attrition_runtime import binary, contract
from attrition_runtime.binary_rest import _request
from attrition_runtime.client import EXAMPLE_EMPLOYEE, binary_request, v2_request

ROWS = [EXAMPLE_EMPLOYEE, {**EXAMPLE_EMPLOYEE, "Age": 29.5, "OverTime": "No", "JobRole": "Manager"}]


def _decoded(body: bytes, headers: dict[str, str]) -> InferenceRequest:
    length = binary.header_length(headers[binary.HEADER_LENGTH], len(body))
    header, rest = binary.split(body, length)
    return _request(header, binary.take_inputs(header, rest))


def test_a_binary_body_becomes_the_columns_of_its_json_twin():
    request = _decoded(*binary_request(ROWS))
    from_binary = contract.decode_inputs(request.inputs, 1000)
    from_json = contract.decode_inputs(InferenceRequest.model_validate(v2_request(ROWS)).inputs, 1000)
    for name in FEATURES:
        assert from_binary[name].dtype == from_json[name].dtype, name
        assert from_binary[name].tolist() == from_json[name].tolist(), name
    numeric = next(name for name in FEATURES if name not in CATEGORICAL)
    assert isinstance(request.inputs[FEATURES.index(numeric)].data.root, np.ndarray)  # no list on the way


def test_binary_outputs_read_back_as_sent_and_the_output_flag_wins():
    response = {
        "model_name": "m",
        "outputs": [
            {"name": "probability", "datatype": "FP64", "shape": [2], "data": [0.25, 1 / 3]},
            {"name": "prediction", "datatype": "BYTES", "shape": [2], "data": [b"Yes", "Não"]},
            {"name": "is_outlier", "datatype": "BOOL", "shape": [2], "data": [True, False]},
        ],
    }
    body, length = binary.encode_response(
        json.loads(json.dumps(response, default=bytes.decode)), True, {"is_outlier": False}
    )
    header, rest = binary.split(body, length)
    sizes = [o.get("parameters", {}).get("binary_data_size") for o in header["outputs"]]
    assert sizes == [16, 4 + 3 + 4 + 4, None] and header["outputs"][2]["data"] == [True, False]
    assert np.frombuffer(rest[:16], "<f8").tolist() == [0.25, 1 / 3]
    assert binary.unpack_bytes("prediction", rest[16:]) == [b"Yes", "Não".encode()]
    assert binary.encode_response(response, False, {})[1] is None  # JSON alone unless asked


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x05\x00\x00\x00Yes", "runs past"),
        (b"\x03\x00", "4-byte length"),
        (b"\xff\xff\xff\xffYes", "runs past"),
    ],
)
def test_bytes_lengths_are_checked_before_use(raw, message):
    with pytest.raises(binary.MalformedBody, match=message):
        binary.unpack_bytes("OverTime", memoryview(raw))


@pytest.mark.parametrize("value", ["-1", "0", "abc", str(2**70), "1000000"])
def test_header_lengths_outside_the_body_are_refused(value):
    with pytest.raises(binary.MalformedBody, match=binary.HEADER_LENGTH):
        binary.header_length(value, 100)
