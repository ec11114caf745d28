"""Malformed V2 requests, each with the field the server must name when it refuses it: one catalogue
for the server tests (tests/test_server.py), the codec tests (runtime/tests/test_contract.py) and the
soak. Each case is a function that spoils a valid body (attrition_runtime.client.v2_request) in place."""

from __future__ import annotations

from collections.abc import Callable

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
