"""Every V2 client on its defaults, and no body a 5xx: real MLServer; tritonclient (binary inputs and
outputs over HTTP, gRPC) and the KServe SDK (REST with binary inputs, gRPC; in its own virtualenv) give
the JSON answers' numbers; the bad-body catalogue's bytes get 4xx JSON errors naming what was wrong; a
bounded byte-level fuzz run sees no 5xx."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from attrition.contract.schema import FEATURES
from attrition_runtime.binary import HEADER_LENGTH
from attrition_runtime.client import EXAMPLE_EMPLOYEE, binary_request, triton_inputs, v2_request
from attrition_runtime.wire import REST_EXTENSIONS, model_path
from attrition_tools import fuzz
from attrition_tools.bad_requests import BAD_BODIES
from attrition_tools.serve import SERVED_MODEL_NAME

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parents[1]

#: The outputs that must agree to 1e-12 between encodings and protocols, and those that must be equal.
NUMBERS = ("probability", "outlier_score", "drift_p_value")
VERDICTS = ("prediction", "is_outlier", "is_drift")


@pytest.fixture(scope="module")
def rows(release) -> list[dict]:
    return release.result.X_test.head(60).to_dict(orient="records")


def infer_url(server) -> str:
    return server.http_url + model_path(SERVED_MODEL_NAME, "infer")


def json_outputs(server, rows: list[dict]) -> dict[str, np.ndarray]:
    answer = requests.post(infer_url(server), json=v2_request(rows), timeout=60)
    assert answer.status_code == 200, answer.text
    return {o["name"]: np.asarray(o["data"]) for o in answer.json()["outputs"]}


def assert_same(reference: dict[str, np.ndarray], result) -> None:
    for name in NUMBERS:
        np.testing.assert_allclose(result.as_numpy(name).astype(float), reference[name], rtol=1e-12, atol=0)
    for name in VERDICTS:
        got = result.as_numpy(name)
        got = [v.decode() if isinstance(v, bytes) else v for v in got.tolist()]
        assert got == reference[name].tolist(), name


def test_tritonclient_http_defaults_binary_in_and_out(server, rows):
    client = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
    result = client.infer(SERVED_MODEL_NAME, triton_inputs(rows, httpclient))  # binary both ways
    assert result.get_response()["outputs"][0]["parameters"]["binary_data_size"] == 8 * len(rows)
    assert_same(json_outputs(server, rows), result)
    grpc = grpcclient.InferenceServerClient(server.grpc_address)
    assert_same(json_outputs(server, rows), grpc.infer(SERVED_MODEL_NAME, triton_inputs(rows, grpcclient)))


def test_mixed_inputs_and_per_output_binary(server, rows):
    client = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
    inputs = triton_inputs(rows, httpclient)
    for tensor in inputs[::2]:  # every other input as JSON
        tensor.set_data_from_numpy(
            np.array(
                [row[tensor.name()] for row in rows], dtype=object if tensor.datatype() == "BYTES" else float
            ),
            binary_data=False,
        )
    outputs = [
        httpclient.InferRequestedOutput("probability", binary_data=True),
        httpclient.InferRequestedOutput("prediction", binary_data=False),
    ]
    result = client.infer(SERVED_MODEL_NAME, inputs, outputs=outputs)
    by_name = {o["name"]: o for o in result.get_response()["outputs"]}
    assert "binary_data_size" in by_name["probability"]["parameters"] and "data" in by_name["prediction"]
    assert_same(json_outputs(server, rows), result)


def test_binary_body_gets_json_unless_binary_outputs_are_asked(server, rows):
    body, headers = binary_request(rows[:3])
    answer = requests.post(infer_url(server), data=body, headers=headers, timeout=30)
    assert answer.status_code == 200 and HEADER_LENGTH not in answer.headers
    assert (
        answer.json()["outputs"]
        == requests.post(infer_url(server), json=v2_request(rows[:3])).json()["outputs"]
    )
    compressed = requests.post(
        infer_url(server),
        data=gzip.compress(body),
        headers={**headers, "Content-Encoding": "gzip"},
        timeout=30,
    )
    assert compressed.status_code == 200 and compressed.json()["outputs"] == answer.json()["outputs"]


def test_metadata_says_the_extension_is_supported(server):
    model = requests.get(server.http_url + model_path(SERVED_MODEL_NAME), timeout=10).json()
    assert model["parameters"]["extensions"] == list(REST_EXTENSIONS)
    assert set(REST_EXTENSIONS) <= set(requests.get(server.http_url + "/v2", timeout=10).json()["extensions"])


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_bytes_get_4xx_json_naming_what_is_wrong(server, case):
    build, status, named = BAD_BODIES[case]
    body, headers = build()
    answer = requests.post(infer_url(server), data=body, headers=headers, timeout=30)
    assert answer.status_code == status, answer.text
    assert named in answer.json()["error"]
    assert (
        requests.post(infer_url(server), json=v2_request([EXAMPLE_EMPLOYEE]), timeout=30).status_code == 200
    )


def test_bounded_fuzz_run_sees_no_5xx(server):
    report = fuzz.run(infer_url(server), requests=300, seed=7)
    assert not report.problems, report.problems[:5]
    assert sum(n for s, n in report.statuses.items() if s == 200 or 400 <= s < 500) == 300
    assert {200, 400, 415} <= set(report.statuses)  # refusals of each kind, and valid bodies scored
    assert (
        requests.post(infer_url(server), json=v2_request([EXAMPLE_EMPLOYEE]), timeout=30).status_code == 200
    )


def test_every_feature_can_go_binary_one_by_one(server):
    """Each input alone as binary (the others JSON): the decoding of each column is the JSON one."""
    reference = json_outputs(server, [EXAMPLE_EMPLOYEE])["probability"]
    client = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
    for name in FEATURES[:3]:
        inputs = triton_inputs([EXAMPLE_EMPLOYEE], httpclient, binary=False)
        (tensor,) = [t for t in inputs if t.name() == name]
        value = EXAMPLE_EMPLOYEE[name]
        tensor.set_data_from_numpy(np.array([value], dtype=object if isinstance(value, str) else float))
        result = client.infer(SERVED_MODEL_NAME, inputs)
        np.testing.assert_allclose(result.as_numpy("probability"), reference, rtol=1e-12)


CLIENTS_VENV = Path(os.environ.get("ATTRITION_CLIENTS_VENV", ROOT / ".venv-clients"))


def test_kserve_rest_and_grpc_clients_on_their_defaults(server, rows, tmp_path):
    """The KServe SDK, in the virtualenv it installs into (its pins are not ours): REST with binary
    inputs (its default), REST asking for binary outputs, and gRPC give the JSON numbers to 1e-12."""
    python = CLIENTS_VENV / "bin" / "python"
    assert python.exists(), (
        f"no kserve at {python}: make install builds it from tools/clients-requirements.txt"
    )
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(json.dumps({name: [row[name] for row in rows] for name in FEATURES}))
    script = Path(__file__).with_name("kserve_clients.py")
    command = [
        str(python),
        str(script),
        server.http_url,
        server.grpc_address,
        SERVED_MODEL_NAME,
        str(rows_file),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"]}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reference = json_outputs(server, rows)
    for client, outputs in json.loads(done.stdout).items():
        for name in NUMBERS:
            np.testing.assert_allclose(outputs[name], reference[name], rtol=1e-12, atol=0, err_msg=client)
        for name in VERDICTS:
            assert outputs[name] == reference[name].tolist(), (client, name)
