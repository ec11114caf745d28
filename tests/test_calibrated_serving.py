"""A model trained with calibration, as a user meets it: trained and registered with
``calibration="sigmoid"`` (``attrition train --calibration sigmoid``), the choice in its MLflow run and
its bundle, then served by a real MLServer and called with tritonclient: the probabilities are
``CalibratedClassifierCV.predict_proba``'s and the attributions add up to their log-odds."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from scipy.special import logit

from attrition import bundle, config
from attrition.bundle.trust_bundle import TrustBundle
from attrition.contract.schema import frame_codes
from attrition.training.release import train_and_register
from attrition_runtime.client import triton_inputs
from attrition_tools.serve import SERVED_MODEL_NAME, Server, free_ports

pytestmark = [pytest.mark.server, pytest.mark.train]

NAME = f"{config.MODEL_NAME}-calibrated"
ROWS = 40


@pytest.fixture(scope="module")
def calibrated():
    return train_and_register(
        quick=True, name=NAME, trust="open", calibration="sigmoid", progress=lambda _: None
    )


@pytest.fixture(scope="module")
def served(calibrated, tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibrated-server")
    env = {"ATTRITION_INFERENCE_LOG": str(folder / "inference-log")}
    uri = f"models:/{NAME}/{calibrated.version}"
    with Server(uri, ports=free_ports(), env=env, log_path=folder / "mlserver.log") as running:
        yield running


def test_training_records_the_calibration_it_fitted(calibrated):
    params = mlflow.get_run(calibrated.run_id).data.params
    assert (params["calibration_setting"], params["calibration"]) == ("sigmoid", "sigmoid")
    info = bundle.load(calibrated.model_uri).info
    assert info.calibration["method"] == "sigmoid"
    assert {"oof_ece", "test_ece", "test_ece_uncalibrated"} <= set(info.calibration)
    assert info.not_compiled is None  # the compiled scorer serves it, the map after it


def test_without_its_compiled_form_the_bundle_scores_the_same_with_scikit_learn(calibrated, tmp_path):
    (compiled_file,) = bundle.export(calibrated.model_uri, tmp_path / "model").rglob("compiled.npz")
    codes = frame_codes(calibrated.result.X_test)
    served = TrustBundle(compiled_file.parent).score_codes(codes)["probability"]
    compiled_file.unlink()
    fallback = TrustBundle(compiled_file.parent)
    assert fallback.scoring == "scikit-learn"
    np.testing.assert_allclose(fallback.score_codes(codes)["probability"], served, rtol=0, atol=1e-12)


def test_served_probabilities_are_the_calibrated_classifiers(calibrated, served):
    rows = calibrated.result.X_test.head(ROWS)
    client = httpclient.InferenceServerClient(served.http_url.removeprefix("http://"))
    result = client.infer(SERVED_MODEL_NAME, triton_inputs(rows.to_dict(orient="records"), httpclient))
    expected = calibrated.result.model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(result.as_numpy("probability"), expected, rtol=0, atol=1e-12)
    threshold = result.get_response()["parameters"]["decision_threshold"]
    assert threshold == pytest.approx(calibrated.result.threshold)
    leaves = [label.decode() == "Yes" for label in result.as_numpy("prediction")]
    assert leaves == list(expected >= threshold)


def test_served_attributions_add_up_to_the_calibrated_log_odds(calibrated, served):
    rows = calibrated.result.X_test.head(3)
    client = grpcclient.InferenceServerClient(served.grpc_address)
    result = client.infer(
        SERVED_MODEL_NAME,
        triton_inputs(rows.to_dict(orient="records"), grpcclient),
        parameters={"explain": True},
    )
    for explanation, probability in zip(
        result.as_numpy("explanation"), result.as_numpy("probability"), strict=True
    ):
        explanation = json.loads(explanation)
        total = sum(explanation["attributions"].values()) + explanation["base_value"]
        assert explanation["scale"] == "log-odds"
        assert total == pytest.approx(float(logit(probability)), abs=1e-4)
