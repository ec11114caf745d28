"""The V2 wire, shared by the server, its clients, the manifests' tests and the tools: datatypes,
default ports and probe paths. Imports neither mlserver nor tritonclient: their generated gRPC stubs
register the same ``inference.*`` protobuf symbols, so one process can load only one of them."""

from __future__ import annotations

from attrition.contract.outputs import Kind

#: V2 datatypes of the inputs.
CATEGORICAL_DATATYPE = "BYTES"
NUMERIC_DATATYPE = "FP64"
#: Numeric datatypes accepted (and converted to FP64).
NUMERIC_ACCEPTED = ("FP64", "FP32", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8")
#: Datatypes of the optional ``employee_id`` input (a string id, or a number like EmployeeNumber).
ENTITY_DATATYPES = ("BYTES", "INT64", "INT32")
#: The V2 datatype of each kind of model output (attrition.contract.outputs).
V2_DATATYPES: dict[Kind, str] = {"float64": "FP64", "str": "BYTES", "bool": "BOOL"}

#: The REST extensions of the V2 protocol the server speaks (model metadata ``parameters.extensions``,
#: and ``extensions`` of settings.json for the server metadata): binary tensors beside JSON.
REST_EXTENSIONS = ("binary_tensor_data",)

#: MLServer's own default ports (``mlserver.settings.Settings``), restated because clients must not
#: import mlserver; tests/test_client_side.py checks them against MLServer's.
DEFAULT_PORTS = {"http": 8080, "grpc": 8081, "metrics": 8082}


def model_path(model_name: str, endpoint: str = "") -> str:
    """``/v2/models/<name>[/<endpoint>]``: infer, ready, or the metadata (no endpoint)."""
    return f"/v2/models/{model_name}" + (f"/{endpoint}" if endpoint else "")
