"""The V2 server as clients meet it: real MLServer, real tritonclient (HTTP and gRPC), raw HTTP."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from helpers import ANCHOR_BUDGET_S
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from attrition.contract.outputs import ALL_OUTPUTS
from attrition.contract.schema import CATEGORICAL, FEATURES, NEGATIVE_LABEL, POSITIVE_LABEL
from attrition_runtime.client import EXAMPLE_EMPLOYEE, triton_inputs, v2_request
from attrition_tools.bad_requests import BAD_REQUESTS
from attrition_tools.serve import SERVED_MODEL_NAME

pytestmark = [pytest.mark.server, pytest.mark.train]


def http_infer(server, rows: list[dict], parameters: dict | None = None):
    client = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
    return client.infer(SERVED_MODEL_NAME, triton_inputs(rows, httpclient), parameters=parameters)


def grpc_infer(server, rows: list[dict], parameters: dict | None = None):
    client = grpcclient.InferenceServerClient(server.grpc_address)
    return client.infer(SERVED_MODEL_NAME, triton_inputs(rows, grpcclient), parameters=parameters)


def post(server, body, timeout: float = 30) -> requests.Response:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return requests.post(
        f"{server.http_url}/v2/models/{SERVED_MODEL_NAME}/infer",
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=timeout,
    )


def metrics(server) -> dict[tuple[str, tuple], float]:
    text = requests.get(server.metrics_url, timeout=10).text
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(
                sorted((k, v) for k, v in sample.labels.items() if k not in {"model_name", "model_version"})
            )
            values[(sample.name, labels)] = sample.value
    return values


@pytest.fixture(scope="module")
def test_rows(release) -> list[dict]:
    return release.result.X_test.head(40).to_dict(orient="records")


def test_health_and_metadata(server):
    client = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(SERVED_MODEL_NAME)
    metadata = client.get_model_metadata(SERVED_MODEL_NAME)
    inputs = {i["name"]: i for i in metadata["inputs"]}
    assert list(inputs) == [*FEATURES, "employee_id"]  # the features, then the optional entity id
    assert inputs["employee_id"]["parameters"]["optional"] is True
    assert inputs["OverTime"]["datatype"] == "BYTES" and inputs["Age"]["datatype"] == "FP64"
    assert inputs["JobRole"]["parameters"]["allowed_values"] == list(CATEGORICAL["JobRole"])
    assert [o["name"] for o in metadata["outputs"]] == [o.name for o in ALL_OUTPUTS]
    grpc = grpcclient.InferenceServerClient(server.grpc_address)
    assert grpc.is_server_ready() and len(grpc.get_model_metadata(SERVED_MODEL_NAME).inputs) == 31


def test_batch_gets_every_output_and_drift(server, test_rows):
    result = http_infer(server, test_rows)
    probability = result.as_numpy("probability")
    assert probability.shape == (40,) and ((probability >= 0) & (probability <= 1)).all()
    threshold = result.get_response()["parameters"]["decision_threshold"]
    expected = np.where(probability >= threshold, POSITIVE_LABEL, NEGATIVE_LABEL)
    assert result.as_numpy("prediction").astype(str).tolist() == expected.tolist()
    assert (
        result.as_numpy("outlier_score").dtype == np.float64 and result.as_numpy("is_outlier").dtype == bool
    )
    assert list(result.as_numpy("drift_feature").astype(str)) == list(FEATURES)
    assert result.as_numpy("drift_p_value").shape == (30,) and result.as_numpy("is_drift").shape == (1,)
    unasked = http_infer(server, test_rows, parameters={"drift": False})
    assert unasked.as_numpy("is_drift") is None and unasked.as_numpy("probability").shape == (40,)
    single = http_infer(server, [EXAMPLE_EMPLOYEE])
    assert single.as_numpy("is_drift") is None  # one row says nothing about drift
    assert "batch drift needs at least" in single.get_response()["parameters"]["drift"]


def test_rest_and_grpc_give_the_same_numbers(server, test_rows):
    rest, grpc = http_infer(server, test_rows), grpc_infer(server, test_rows)
    for name in ("probability", "outlier_score", "drift_p_value"):
        np.testing.assert_allclose(rest.as_numpy(name), grpc.as_numpy(name), rtol=1e-12)
    assert list(rest.as_numpy("prediction").astype(str)) == [v.decode() for v in grpc.as_numpy("prediction")]
    assert (rest.as_numpy("is_outlier") == grpc.as_numpy("is_outlier")).all()


def test_integer_and_float32_inputs_are_converted(server):
    body = v2_request([EXAMPLE_EMPLOYEE])
    for tensor in body["inputs"]:
        if tensor["name"] == "Age":
            tensor.update(datatype="INT64", data=[41])
        if tensor["name"] == "MonthlyIncome":
            tensor.update(datatype="FP32", shape=[1, 1], data=[[5993.0]])
    answer = post(server, body)
    assert answer.status_code == 200, answer.text
    reference = post(server, v2_request([EXAMPLE_EMPLOYEE])).json()
    assert answer.json()["outputs"][0]["data"] == pytest.approx(reference["outputs"][0]["data"])


def test_explanations_on_request(server, test_rows):
    started = time.perf_counter()
    result = grpc_infer(server, test_rows[:2], parameters={"explain": True})
    assert time.perf_counter() - started < 10
    explanations = [json.loads(e) for e in result.as_numpy("explanation")]
    assert len(explanations) == 2 and set(explanations[0]["attributions"]) == set(FEATURES)
    assert http_infer(server, test_rows[:2]).as_numpy("explanation") is None  # off by default


def test_anchor_budget_holds_and_the_server_keeps_answering(server, test_rows):
    answers: dict = {}

    def anchors() -> None:
        started = time.perf_counter()
        answers["anchors"] = post(server, v2_request(test_rows[:25], {"explain": "anchors"}), timeout=60)
        answers["seconds"] = time.perf_counter() - started

    worker = threading.Thread(target=anchors)
    worker.start()
    time.sleep(1.0)  # the anchors are being computed now
    started = time.perf_counter()
    assert post(server, v2_request([EXAMPLE_EMPLOYEE])).status_code == 200
    assert time.perf_counter() - started < 2.0
    worker.join(60)
    assert answers["anchors"].status_code == 200
    assert answers["seconds"] < ANCHOR_BUDGET_S + 5  # budget plus the attributions of 25 rows
    explanation = next(o for o in answers["anchors"].json()["outputs"] if o["name"] == "explanation")
    anchors = [json.loads(e)["anchor"] for e in explanation["data"]]
    assert anchors[0]["anchor"]  # the first row finished within the budget...
    assert anchors[-1] == {"anchor": None, "timed_out": True, "budget_s": ANCHOR_BUDGET_S}  # ...not all 25


#: Every case of the catalogue but the non-finite numbers, which JSON cannot carry as such (they have
#: test_non_finite_numbers_get_4xx below).
REST_CASES = [case for case in BAD_REQUESTS if case not in ("NaN", "infinity")]


@pytest.mark.parametrize("case", REST_CASES)
def test_bad_input_gets_4xx_naming_the_field(server, case):
    change, field = BAD_REQUESTS[case]
    answer = post(server, change(v2_request([EXAMPLE_EMPLOYEE])))
    assert 400 <= answer.status_code < 500, answer.text
    assert field in answer.text
    assert post(server, v2_request([EXAMPLE_EMPLOYEE])).status_code == 200  # still up and answering


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_get_4xx(server, literal):
    body = json.dumps(v2_request([EXAMPLE_EMPLOYEE])).replace("5993.0", literal, 1)
    answer = post(server, body)
    assert 400 <= answer.status_code < 500, answer.text
    assert post(server, v2_request([EXAMPLE_EMPLOYEE])).status_code == 200


def test_malformed_json_gets_4xx(server):
    for body in ("{not json", '{"inputs": 7}', "[]"):
        answer = post(server, body)
        assert 400 <= answer.status_code < 500, (body, answer.status_code, answer.text)
    assert post(server, v2_request([EXAMPLE_EMPLOYEE])).status_code == 200


def test_grpc_bad_input_is_invalid_argument(server):
    client = grpcclient.InferenceServerClient(server.grpc_address)
    inputs = triton_inputs([{**EXAMPLE_EMPLOYEE, "MonthlyIncome": float("nan")}], grpcclient)
    with pytest.raises(InferenceServerException) as error:
        client.infer(SERVED_MODEL_NAME, inputs)
    assert "INVALID_ARGUMENT" in str(error.value.status()) and "MonthlyIncome" in error.value.message()


def _window(server) -> tuple[float, float, float]:
    values = metrics(server)
    return (
        values[("attrition_window_is_drift", ())],
        values[("attrition_window_drift_p_value", (("feature", "MonthlyIncome"),))],
        values[("attrition_window_drift_tests_total", ())],
    )


def _send_one_by_one(server, rows: list[dict]) -> None:
    with requests.Session() as session:
        url = f"{server.http_url}/v2/models/{SERVED_MODEL_NAME}/infer"
        for row in rows:
            assert session.post(url, json=v2_request([row]), timeout=30).status_code == 200


def _settled(server, tests_before: float) -> tuple[float, float, float]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the window test runs off the request path
        state = _window(server)
        if state[2] > tests_before:
            return state
        time.sleep(0.2)
    raise AssertionError("no window drift test ran")


def test_sliding_window_drift_flips_for_shifted_traffic_only(server, release):
    training = release.result.X_train.sample(200, random_state=11)
    tests_before = _window(server)[2] if ("attrition_window_drift_tests_total", ()) in metrics(server) else 0
    _send_one_by_one(server, training.to_dict(orient="records"))
    is_drift, p_value, tests = _settled(server, tests_before)
    assert is_drift == 0 and p_value > 0.01
    shifted = training.assign(MonthlyIncome=training["MonthlyIncome"] * 3, OverTime="Yes")
    _send_one_by_one(server, shifted.to_dict(orient="records"))
    is_drift, p_value, _ = _settled(server, tests)
    assert is_drift == 1 and p_value < 1e-6
    values = metrics(server)
    assert values[("attrition_rows_total", ())] >= 400
    assert ("attrition_window_outlier_rate", ()) in values


def test_telemetry_has_one_line_per_request_and_no_feature_values(server):
    marker = 12345.678
    row = {**EXAMPLE_EMPLOYEE, "MonthlyIncome": marker}
    result = http_infer(server, [row])
    request_id = result.get_response()["id"]
    time.sleep(0.5)
    log = server.log_path.read_text()
    assert str(marker) not in log and "12345" not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith('{"event": "inference"')]
    mine = [line for line in lines if line["request_id"] == request_id]
    assert len(mine) == 1
    assert mine[0]["rows"] == 1 and "payload" not in mine[0] and mine[0]["model_version"]
    assert "-4.0" not in log  # rejected values are not echoed into the log either


def test_estimated_performance_gauges_are_cbpe_on_the_window(server, release):
    from attrition.outcomes import cbpe

    rows = release.result.X_test.head(200)  # the window's size: it then holds these rows only
    tests_before = metrics(server).get(("attrition_window_drift_tests_total", ()), 0)
    result = http_infer(server, rows.to_dict(orient="records"))
    deadline = time.monotonic() + 10
    while metrics(server).get(("attrition_window_drift_tests_total", ()), 0) <= tests_before:
        assert time.monotonic() < deadline, "no window test ran"  # it runs off the request path
        time.sleep(0.2)
    probability = result.as_numpy("probability").astype(float)
    predicted = result.as_numpy("prediction").astype(str) == "Yes"
    expected = cbpe.estimate(probability, predicted)
    values = metrics(server)
    assert values[("attrition_estimated_window_rows", ())] == 200
    for metric in cbpe.ESTIMATED:
        assert values[(f"attrition_estimated_{metric}", ())] == pytest.approx(expected[metric], abs=1e-9)
    assert 0.5 < values[("attrition_estimated_roc_auc", ())] < 1
    assert values[("attrition_training_cv_roc_auc", ())] == pytest.approx(release.cv_roc_auc)
