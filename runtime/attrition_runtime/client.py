"""The client side of the V2 contract: example rows and request bodies.

This module must not import mlserver (see wire.py): clients, tests, the book and the tools use
tritonclient; only the server process imports mlserver.
"""

from __future__ import annotations

import json
from types import ModuleType

import numpy as np

from attrition.contract.schema import CATEGORICAL, FEATURES
from attrition.inference_log.keys import ENTITY_INPUT
from attrition_runtime.binary import BINARY_MEDIA_TYPE, HEADER_LENGTH, pack_bytes
from attrition_runtime.wire import CATEGORICAL_DATATYPE, NUMERIC_DATATYPE

#: One employee (the first row of the IBM data set), for examples, smoke tests and the ready line.
EXAMPLE_EMPLOYEE: dict[str, str | float] = {
    "Age": 41,
    "BusinessTravel": "Travel_Rarely",
    "DailyRate": 1102,
    "Department": "Sales",
    "DistanceFromHome": 1,
    "Education": 2,
    "EducationField": "Life Sciences",
    "EnvironmentSatisfaction": 2,
    "Gender": "Female",
    "HourlyRate": 94,
    "JobInvolvement": 3,
    "JobLevel": 2,
    "JobRole": "Sales Executive",
    "JobSatisfaction": 4,
    "MaritalStatus": "Single",
    "MonthlyIncome": 5993,
    "MonthlyRate": 19479,
    "NumCompaniesWorked": 8,
    "OverTime": "Yes",
    "PercentSalaryHike": 11,
    "PerformanceRating": 3,
    "RelationshipSatisfaction": 1,
    "StockOptionLevel": 0,
    "TotalWorkingYears": 8,
    "TrainingTimesLastYear": 0,
    "WorkLifeBalance": 1,
    "YearsAtCompany": 6,
    "YearsInCurrentRole": 4,
    "YearsSinceLastPromotion": 0,
    "YearsWithCurrManager": 5,
}


def v2_request(rows: list[dict], parameters: dict | None = None, employee_ids: list | None = None) -> dict:
    """A V2 JSON request body for rows of features (what curl or any HTTP client sends), with the
    optional ``employee_id`` input (ints go as INT64, anything else as BYTES)."""
    inputs = []
    for name in FEATURES:
        values = [row[name] for row in rows]
        if name in CATEGORICAL:
            inputs.append(
                {"name": name, "datatype": CATEGORICAL_DATATYPE, "shape": [len(rows)], "data": values}
            )
        else:
            data = [float(v) for v in values]
            inputs.append({"name": name, "datatype": NUMERIC_DATATYPE, "shape": [len(rows)], "data": data})
    if employee_ids is not None:
        inputs.append(
            {
                "name": ENTITY_INPUT,
                "datatype": _id_datatype(employee_ids),
                "shape": [len(rows)],
                "data": employee_ids,
            }
        )
    body: dict = {"inputs": inputs}
    if parameters:
        body["parameters"] = parameters
    return body


def _id_datatype(employee_ids: list) -> str:
    return "INT64" if all(isinstance(i, int) for i in employee_ids) else CATEGORICAL_DATATYPE


def columns(rows: list[dict]) -> dict[str, np.ndarray]:
    """Rows of features -> one numpy array per input (object for BYTES, float64 for FP64)."""
    return {
        name: np.array([row[name] for row in rows], dtype=object if name in CATEGORICAL else np.float64)
        for name in FEATURES
    }


def triton_inputs(
    rows: list[dict], protocol: ModuleType, employee_ids: list | None = None, binary: bool = True
) -> list:
    """``InferInput`` objects for ``tritonclient.http`` or ``tritonclient.grpc`` (pass the module), with
    the optional ``employee_id`` input.

    Over HTTP the data goes as binary tensors, tritonclient's default (the server speaks the binary
    tensor data extension), or as JSON with ``binary=False``.
    """
    inputs = []
    tensors = [
        (name, values, CATEGORICAL_DATATYPE if name in CATEGORICAL else NUMERIC_DATATYPE)
        for name, values in columns(rows).items()
    ]
    if employee_ids is not None:
        datatype = _id_datatype(employee_ids)
        values = np.array(employee_ids, dtype=np.int64 if datatype == "INT64" else object)
        tensors.append((ENTITY_INPUT, values, datatype))
    for name, values, datatype in tensors:
        tensor = protocol.InferInput(name, [len(rows)], datatype)
        if protocol.__name__.endswith("http"):
            tensor.set_data_from_numpy(values, binary_data=binary)
        else:
            tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    return inputs


def binary_request(
    rows: list[dict], parameters: dict | None = None, binary_outputs: bool = False
) -> tuple[bytes, dict[str, str]]:
    """A V2 request body with every input as binary tensor data, and the headers it needs (what
    tritonclient and kserve send by default; for clients that build bodies themselves)."""
    header: dict = {"inputs": [], "parameters": dict(parameters or {})}
    sections = []
    for name, values in columns(rows).items():
        if name in CATEGORICAL:
            raw, datatype = pack_bytes(str(v) for v in values), CATEGORICAL_DATATYPE
        else:
            raw, datatype = values.astype("<f8").tobytes(), NUMERIC_DATATYPE
        tensor = {"name": name, "datatype": datatype, "shape": [len(rows)]}
        header["inputs"].append({**tensor, "parameters": {"binary_data_size": len(raw)}})
        sections.append(raw)
    if binary_outputs:
        header["parameters"]["binary_data_output"] = True
    encoded = json.dumps(header).encode()
    headers = {"Content-Type": BINARY_MEDIA_TYPE, HEADER_LENGTH: str(len(encoded))}
    return b"".join([encoded, *sections]), headers
