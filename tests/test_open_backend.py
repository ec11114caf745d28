"""The open trust backend as a platform team would ship it: the image's install script without the alibi
extra, into a fresh virtualenv, serving a bundle trained with ``--trust open`` over REST and gRPC, and
refusing a bundle that needs alibi with a message that names the extra."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from helpers import ROOT

from attrition import bundle, config
from attrition.contract.schema import FEATURES
from attrition.training.release import train_and_register
from attrition_runtime.client import triton_inputs, v2_request
from attrition_runtime.wire import model_path
from attrition_tools.serve import SERVED_MODEL_NAME, SERVER_DIR, Server, free_ports

pytestmark = [pytest.mark.container, pytest.mark.server, pytest.mark.train]

OPEN_MODEL = f"{config.MODEL_NAME}-open"


@pytest.fixture(scope="module")
def open_venv(tmp_path_factory):
    """runtime/container/install.sh with no extras, as `docker build --build-arg TRUST_EXTRAS=` runs it."""
    venv = tmp_path_factory.mktemp("open") / "venv"
    script = ROOT / "runtime" / "container" / "install.sh"
    done = subprocess.run(["sh", str(script), str(ROOT), str(venv), ""], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv


@pytest.fixture(scope="module")
def open_bundle(release, tmp_path_factory):
    """A bundle trained with the open backend (in this session's store), exported to a folder."""
    released = train_and_register(quick=True, name=OPEN_MODEL, trust="open", progress=lambda _: None)
    return bundle.export(released.model_uri, tmp_path_factory.mktemp("open-model") / "model")


def _server(venv, model, tmp_path, **kwargs) -> Server:
    command = [str(venv / "bin" / "python"), "-m", "attrition_runtime.start", str(SERVER_DIR)]
    return Server(
        str(model), ports=free_ports(), log_path=tmp_path / "mlserver.log", command=command, **kwargs
    )


def test_the_open_install_has_no_bsl_code(open_venv):
    listed = subprocess.run(
        [str(open_venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {p["name"].lower() for p in json.loads(listed)}
    assert "employee-attrition-serving" in names and "mlserver" in names and "shap" in names
    assert not names & {"alibi", "alibi-detect", "alibi_detect"}


def test_open_bundle_records_its_backend(open_bundle):
    (info_file,) = open_bundle.rglob("bundle.json")
    info = json.loads(info_file.read_text())
    assert info["trust_backend"] == "open" and "alibi" not in info["versions"]
    assert not (info_file.parent / "alibi").exists()
    from mlflow import MlflowClient

    version = MlflowClient().get_model_version_by_alias(OPEN_MODEL, config.STAGING)
    assert version.tags["trust_backend"] == "open"


def test_open_bundle_serves_everything_but_anchors_without_alibi(open_venv, open_bundle, release, tmp_path):
    rows = release.result.X_test.head(40).to_dict(orient="records")
    with _server(open_venv, open_bundle, tmp_path) as server:
        rest = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"))
        answer = rest.infer(SERVED_MODEL_NAME, triton_inputs(rows, httpclient), parameters={"explain": True})
        grpc = grpcclient.InferenceServerClient(server.grpc_address)
        other = grpc.infer(SERVED_MODEL_NAME, triton_inputs(rows, grpcclient), parameters={"explain": True})
        for result in (answer, other):
            probability = result.as_numpy("probability")
            assert probability.shape == (40,) and ((probability >= 0) & (probability <= 1)).all()
            assert result.as_numpy("outlier_score").shape == (40,)
            assert result.as_numpy("is_drift").shape == (1,) and result.as_numpy("drift_p_value").shape == (
                30,
            )
            explanation = json.loads(result.as_numpy("explanation")[0])
            assert set(explanation["attributions"]) == set(FEATURES)
        np.testing.assert_allclose(answer.as_numpy("probability"), other.as_numpy("probability"), rtol=1e-12)
        refused = requests.post(
            server.http_url + model_path(SERVED_MODEL_NAME, "infer"),
            json=v2_request(rows[:1], {"explain": "anchors"}),
            timeout=30,
        )
        assert refused.status_code == 400 and "no anchor explainer" in refused.text
        assert "open trust backend" in refused.text


def test_an_alibi_bundle_is_refused_where_alibi_is_not_installed(open_venv, release, tmp_path):
    folder = bundle.export(config.model_uri(config.PRODUCTION), tmp_path / "model")
    assert _server(open_venv, folder, tmp_path).refused(90) == 3
    log = (tmp_path / "mlserver.log").read_text()
    assert "alibi: the bundle was trained with the alibi trust backend" in log
    assert "'alibi' extra" in log and "--trust open" in log
