"""Run by tests/test_v2_clients.py in the kserve virtualenv (ATTRITION_CLIENTS_VENV, built by ``make
install`` from tools/clients-requirements.txt), where the project is not installed: the KServe Python
SDK's REST and gRPC clients on their defaults (binary tensor data over REST), and REST asking for binary
outputs. ``python kserve_clients.py <http url> <grpc address> <model> <rows.json>`` prints each client's
outputs as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


def inputs(columns: dict[str, list]) -> list[InferInput]:
    tensors = []
    for name, values in columns.items():
        categorical = isinstance(values[0], str)
        array = np.array(values, dtype=object if categorical else np.float64)
        tensor = InferInput(name, [len(values)], "BYTES" if categorical else "FP64")
        tensor.set_data_from_numpy(array)  # binary_data=True: the SDK's default
        tensors.append(tensor)
    return tensors


def plain(response) -> dict[str, list]:
    outputs = {}
    for output in response.outputs:
        values = output.as_numpy().reshape(-1).tolist()
        outputs[output.name] = [v.decode() if isinstance(v, bytes) else v for v in values]
    return outputs


async def main(http_url: str, grpc_address: str, model: str, rows_file: str) -> dict:
    columns = json.loads(Path(rows_file).read_text())
    rest = InferenceRESTClient(RESTConfig(protocol="v2"))  # V1 is the SDK's default protocol
    asked = [RequestedOutput(name, {"binary_data": True}) for name in ("probability", "outlier_score")]
    grpc = InferenceGRPCClient(grpc_address)
    try:
        results = {
            "rest": await rest.infer(http_url, InferRequest(model, inputs(columns)), model),
            "rest_binary_outputs": await rest.infer(
                http_url, InferRequest(model, inputs(columns), request_outputs=asked), model
            ),
            "grpc": await grpc.infer(InferRequest(model, inputs(columns))),
        }
    finally:
        await rest.close()
        await grpc.close()
    return {client: plain(response) for client, response in results.items()}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:5]))))
