"""Malformed V2 requests, each with the field the server must name when it refuses it: one catalogue
for the server tests (tests/test_server.py), the codec tests (runtime/tests/test_contract.py) and the
soak. Each case is a function that spoils a valid body (attrition_runtime.client.v2_request) in place.

:data:`BAD_BODIES` goes below JSON: bytes, media types, encodings and the binary tensor extension's
lengths, each with the status and the name its 4xx answer must carry."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from attrition.contract.schema import FEATURES
from attrition_runtime.binary import HEADER_LENGTH
from attrition_runtime.client import EXAMPLE_EMPLOYEE, binary_request, v2_request
from attrition_runtime.settings import MAX_BATCH_ROWS

Spoil = Callable[[dict], dict]


def without(name: str) -> Spoil:
    def spoil(body: dict) -> dict:
        body["inputs"] = [tensor for tensor in body["inputs"] if tensor["name"] != name]
        return body

    return spoil


def edit(name: str, **changes) -> Spoil:
    def spoil(body: dict) -> dict:
        for tensor in body["inputs"]:
            if tensor["name"] == name:
                tensor.update(changes)
        return body

    return spoil


def rows(n: int) -> Spoil:
    """Every input repeated to ``n`` rows (0: an empty batch)."""

    def spoil(body: dict) -> dict:
        for tensor in body["inputs"]:
            tensor.update(shape=[n], data=tensor["data"] * n)
        return body

    return spoil


def parameters(**values) -> Spoil:
    def spoil(body: dict) -> dict:
        return {**body, "parameters": values}

    return spoil


def extra(tensor: dict) -> Spoil:
    def spoil(body: dict) -> dict:
        body["inputs"].append(tensor)
        return body

    return spoil


#: name -> (spoil, the field the refusal must name)
BAD_REQUESTS: dict[str, tuple[Spoil, str]] = {
    "missing input": (without("Age"), "Age"),
    "unknown input": (extra({"name": "Salary", "datatype": "FP64", "shape": [1], "data": [41.0]}), "Salary"),
    "numeric sent as BYTES": (edit("Age", datatype="BYTES", data=["41"]), "Age"),
    "categorical sent as FP64": (edit("OverTime", datatype="FP64", data=[1.0]), "OverTime"),
    "shape mismatch": (edit("JobRole", shape=[2], data=["Manager", "Manager"]), "JobRole"),
    "shape not a vector": (edit("Age", shape=[1, 2], data=[[41.0, 42.0]]), "Age"),
    "data shorter than shape": (edit("Age", shape=[1], data=[]), "Age"),
    "negative age": (edit("Age", data=[-4.0]), "Age"),
    "unknown category": (edit("Department", data=["Marketing"]), "Department"),
    "empty batch": (rows(0), "inputs"),
    "batch over the maximum": (rows(MAX_BATCH_ROWS + 1), "inputs"),
    "bad explain parameter": (parameters(explain="everything"), "parameters.explain"),
    "bad drift parameter": (parameters(drift="sometimes"), "parameters.drift"),
    "NaN": (edit("MonthlyIncome", data=[float("nan")]), "MonthlyIncome"),
    "infinity": (edit("MonthlyIncome", data=[float("inf")]), "MonthlyIncome"),
    "input given twice": (extra({"name": "Age", "datatype": "FP64", "shape": [1], "data": [41.0]}), "Age"),
    "negative shape": (edit("Age", shape=[-1], data=[41.0]), "Age"),
    "category in the wrong case": (edit("OverTime", data=["yes"]), "OverTime"),
    "boolean sent for a number": (edit("Age", datatype="BOOL", data=[True]), "Age"),
}


# --- byte-level: bodies that are not a V2 JSON request at all -------------------------------------------

Body = tuple[bytes, dict[str, str]]
JSON_TYPE = {"Content-Type": "application/json"}


def _binary(parameters: dict | None = None) -> Body:
    return binary_request([EXAMPLE_EMPLOYEE], parameters)


def _split(body: Body) -> tuple[dict, bytes, dict[str, str]]:
    raw, headers = body
    length = int(headers[HEADER_LENGTH])
    return json.loads(raw[:length]), raw[length:], headers


def _joined(header: dict, rest: bytes, headers: dict[str, str]) -> Body:
    encoded = json.dumps(header).encode()
    return encoded + rest, {**headers, HEADER_LENGTH: str(len(encoded))}


def header_length(value: str) -> Callable[[], Body]:
    def build() -> Body:
        raw, headers = _binary()
        return raw, {**headers, HEADER_LENGTH: value}

    return build


def binary_size(name: str, size: object) -> Callable[[], Body]:
    """The binary body with one input's ``binary_data_size`` replaced."""

    def build() -> Body:
        header, rest, headers = _split(_binary())
        for tensor in header["inputs"]:
            if tensor["name"] == name:
                tensor["parameters"]["binary_data_size"] = size
        return _joined(header, rest, headers)

    return build


def binary_value(name: str, raw: bytes) -> Callable[[], Body]:
    """The binary body with one input's bytes replaced (its size adjusted to match)."""

    def build() -> Body:
        header, rest, headers = _split(_binary())
        sections, offset = [], 0
        for tensor in header["inputs"]:
            size = tensor["parameters"]["binary_data_size"]
            section = raw if tensor["name"] == name else rest[offset : offset + size]
            tensor["parameters"]["binary_data_size"] = len(section)
            sections.append(section)
            offset += size
        return _joined(header, b"".join(sections), headers)

    return build


def binary_datatype(name: str, datatype: str) -> Callable[[], Body]:
    def build() -> Body:
        header, rest, headers = _split(_binary())
        for tensor in header["inputs"]:
            if tensor["name"] == name:
                tensor["datatype"] = datatype
        return _joined(header, rest, headers)

    return build


def raw(body: bytes, **headers: str) -> Callable[[], Body]:
    return lambda: (body, {k.replace("_", "-"): v for k, v in headers.items()})


def cut(end: int) -> Callable[[], Body]:
    """The binary body without its last ``-end`` bytes."""

    def build() -> Body:
        raw_body, headers = _binary()
        return raw_body[:end], headers

    return build


_VALID_JSON = json.dumps(v2_request([EXAMPLE_EMPLOYEE])).encode()
_LAST = FEATURES[-1]
_NOT_UTF8 = b"\xff\xfe\xfd"

#: name -> (build the body and its headers, the status it must get, what the error must name)
BAD_BODIES: dict[str, tuple[Callable[[], Body], int, str]] = {
    "invalid UTF-8 as JSON": (
        raw(b'{"inputs": "' + _NOT_UTF8 + b'"}', Content_Type="application/json"),
        400,
        "body",
    ),
    "invalid UTF-8 without a content type": (raw(_NOT_UTF8 * 10), 400, "body"),
    "random bytes as octet-stream": (
        raw(bytes(range(256)), Content_Type="application/octet-stream"),
        415,
        "Content-Type",
    ),
    "JSON as text/plain": (raw(_VALID_JSON, Content_Type="text/plain"), 415, "Content-Type"),
    "JSON as a form": (
        raw(_VALID_JSON, Content_Type="application/x-www-form-urlencoded"),
        415,
        "Content-Type",
    ),
    "gzip declared but not sent": (
        raw(_VALID_JSON, Content_Type="application/json", Content_Encoding="gzip"),
        400,
        "Content-Encoding",
    ),
    "unsupported content encoding": (
        raw(_VALID_JSON, Content_Type="application/json", Content_Encoding="br"),
        415,
        "Content-Encoding",
    ),
    "header length past the body": (header_length("99999999"), 400, HEADER_LENGTH),
    "negative header length": (header_length("-5"), 400, HEADER_LENGTH),
    "huge header length": (header_length(str(2**70)), 400, HEADER_LENGTH),
    "header length not a number": (header_length("twelve"), 400, HEADER_LENGTH),
    "header length inside the JSON": (header_length("10"), 400, "body"),
    "truncated binary section": (cut(-3), 400, _LAST),
    "bytes after the last input": (lambda: (_binary()[0] + b"\x00" * 8, _binary()[1]), 400, "body"),
    "negative binary_data_size": (binary_size("Age", -8), 400, "Age"),
    "huge binary_data_size": (binary_size("Age", 2**62), 400, "Age"),
    "binary_data_size not a number": (binary_size("Age", "8"), 400, "Age"),
    "FP64 size not a multiple of 8": (binary_value("Age", b"\x00" * 7), 400, "Age"),
    "BYTES length past its data": (binary_value("OverTime", b"\xff\x00\x00\x00Yes"), 400, "OverTime"),
    "BYTES length cut short": (binary_value("OverTime", b"\x03\x00"), 400, "OverTime"),
    "category not UTF-8": (binary_value("OverTime", b"\x03\x00\x00\x00" + _NOT_UTF8), 400, "OverTime"),
    "NaN as binary": (binary_value("MonthlyIncome", np.array([np.nan]).tobytes()), 400, "MonthlyIncome"),
    "unknown binary datatype": (binary_datatype("Age", "FP128"), 400, "Age"),
    "binary rows disagree with the shape": (
        binary_value("Age", np.array([41.0, 42.0]).tobytes()),
        400,
        "Age",
    ),
    "binary header not an object": (lambda: (b"[1]", {**_binary()[1], HEADER_LENGTH: "3"}), 400, "body"),
}
