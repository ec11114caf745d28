"""What the two images hold (only what serves; no BSL code in the open one), their SBOMs and the
README's licence table, and the open image serving an open bundle from an MLflow registry reached as
the production overlay configures it (MLFLOW_TRACKING_URI and the overlay's alias)."""

from __future__ import annotations

import contextlib
import json
import time

import mlflow
import numpy as np
import pytest
import requests
import tritonclient.http as httpclient
from helpers import ROOT
from images import require_images
from mlflow import MlflowClient

from attrition import bundle, config
from attrition.training.release import train_and_register
from attrition_runtime.client import triton_inputs
from attrition_tools import image
from attrition_tools.container import Container, production_deployment, publish_args
from attrition_tools.serve import SERVED_MODEL_NAME, free_ports

pytestmark = pytest.mark.container

MLFLOW_PORT = 5000
#: Distributions that serve nothing: the tools, test and notebook stacks, build back-ends.
NEVER_SHIPPED = {"attrition-tools", "pytest", "ruff", "jupyter-book", "nbval", "pyspark"}
DISTRIBUTIONS = (
    "import json, importlib.metadata as m; print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"
)


@pytest.fixture(scope="module")
def images():
    require_images()


def distributions(variant: str) -> set[str]:
    listed = image.podman("run", "--rm", "--entrypoint", "python", image.tag(variant), "-c", DISTRIBUTIONS)
    return {name.lower().replace("_", "-") for name in json.loads(listed.stdout)}


@pytest.mark.parametrize("variant", list(image.VARIANTS))
def test_each_image_installs_only_what_serves(images, variant):
    names = distributions(variant)
    assert {"employee-attrition-serving", "mlserver", "mlflow", "deltalake"} <= names
    assert not names & NEVER_SHIPPED, names & NEVER_SHIPPED
    has_bsl = bool(names & {"alibi", "alibi-detect"})
    assert has_bsl == (variant == "default")
    if variant == "open":
        assert not names & set(image.NOT_IN_OPEN)
    # No compilers, no build tree, no package caches.
    check = "command -v gcc cc; ls -d /src /root/.cache /opt/venv/share/jupyter 2>/dev/null; true"
    found = image.podman("run", "--rm", "--entrypoint", "sh", image.tag(variant), "-c", check).stdout
    assert found.strip() == ""


def test_sboms_list_each_images_environment_and_the_readme_shows_their_licences(images):
    for variant in image.VARIANTS:
        sbom = json.loads(image.sbom_path(variant).read_text())
        assert sbom["bomFormat"] == "CycloneDX"
        names = {c["name"].lower() for c in sbom["components"]}
        assert ("alibi" in names) == (variant == "default") and "mlserver" in names
    # alibi and alibi-detect (BSL 1.1) declare "Other/Proprietary License": only the default image.
    proprietary = {
        variant: {name for name, lic in packages.items() if "Proprietary" in lic}
        for variant, packages in image.licences().items()
    }
    assert proprietary == {"default": {"alibi", "alibi-detect"}, "open": set()}
    table = image.licence_table()
    readme = (ROOT / "README.md").read_text()
    assert table in readme, "README's licence table is stale: python -m attrition_tools.image --licences"


@contextlib.contextmanager
def tracking(uri: str):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield MlflowClient(uri)
    finally:
        mlflow.set_tracking_uri(previous)


def register(uri: str, model_dir, name: str) -> str:
    """Log an exported bundle to the registry at ``uri`` and alias it ``production``."""
    with tracking(uri) as client:
        run = client.create_run(client.create_experiment("container-test"))
        client.log_artifacts(run.info.run_id, str(model_dir), "model")
        client.set_terminated(run.info.run_id)
        client.create_registered_model(name)
        version = client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id)
        client.set_registered_model_alias(name, config.PRODUCTION, version.version)
    return str(version.version)


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(url)


@pytest.fixture(scope="module")
def open_from_registry(images, release, tmp_path_factory):
    """An MLflow tracking server (the open image's own mlflow, as a sidecar sharing the pod's network)
    holding an open bundle; the open image started beside it with the overlay's flags and alias, its
    MLFLOW_TRACKING_URI pointing at the sidecar instead of Databricks."""
    name, quiet = f"{config.MODEL_NAME}-open", lambda _: None
    released = train_and_register(quick=True, name=name, trust="open", progress=quiet)
    model_dir = bundle.export(released.model_uri, tmp_path_factory.mktemp("open") / "model")
    store = tmp_path_factory.mktemp("registry")
    store.chmod(0o777)
    deployment, ports = production_deployment(), free_ports()
    ports["mlflow"] = free_ports()["http"]
    sidecar = f"attrition-registry-{ports['mlflow']}"
    server = ["mlflow", "server", "--host", "0.0.0.0", "--port", str(MLFLOW_PORT), "--workers", "1",
              "--backend-store-uri", "sqlite:////store/mlflow.db",
              "--artifacts-destination", "/store/artifacts"]  # fmt: skip
    image.podman(
        "run", "--detach", "--name", sidecar, "--volume", f"{store}:/store:Z",
        *publish_args({**deployment.ports, "mlflow": MLFLOW_PORT}, ports),
        "--entrypoint", server[0], image.tag("open"), *server[1:],
    )  # fmt: skip
    container = Container(
        image.tag("open"), deployment, ports, network_of=sidecar,
        env={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{MLFLOW_PORT}"},
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{ports['mlflow']}/health")
        # The name the overlay serves (its Unity Catalog name), registered in the sidecar.
        served_name = deployment.env.get("ATTRITION_MODEL_NAME", config.MODEL_NAME)
        version = register(f"http://127.0.0.1:{ports['mlflow']}", model_dir, served_name)
        container.start()
        yield container, version, model_dir
    finally:
        container.remove()
        image.podman("rm", "--force", "--time", "0", sidecar, check=False)


def test_open_image_serves_an_open_bundle_from_the_registry(open_from_registry, release):
    container, version, model_dir = open_from_registry
    assert container.deployment.env["ATTRITION_MODEL_ALIAS"] == config.PRODUCTION  # the overlay's alias
    rows = release.result.X_test.head(10).to_dict(orient="records")
    rest = httpclient.InferenceServerClient(container.http_url.removeprefix("http://"))
    answer = rest.infer(SERVED_MODEL_NAME, triton_inputs(rows, httpclient))
    assert answer.get_response()["model_version"] == version
    expected = bundle.load(str(model_dir)).score(release.result.X_test.head(10))["probability"]
    np.testing.assert_allclose(answer.as_numpy("probability"), expected.to_numpy(), rtol=1e-9)
