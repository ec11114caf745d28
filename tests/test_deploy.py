"""What ships to AKS, checked offline: both Kustomize overlays render and validate against the
Kubernetes schemas, differ where they must and keep the Pod Security hardening; the workflows match
GitHub's schema; the Dockerfile passes hadolint. Each validator is also shown to reject a broken input."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from helpers import ROOT
from kubernetes_validate.utils import latest_version

from attrition_runtime.settings import MODEL_ALIAS_ENV, MODEL_URI_ENV, RuntimeSettings, env_name
from attrition_runtime.wire import DEFAULT_PORTS
from attrition_tools.serve import SERVED_MODEL_NAME

pytestmark = pytest.mark.deploy

#: kubectl, check-jsonschema and hadolint come with the dev extras, beside this interpreter.
BIN = Path(sys.executable).parent
KUSTOMIZE = ROOT / "kustomize"
OVERLAYS = ("staging", "production")
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
DOCKERFILE = ROOT / "runtime" / "Dockerfile"
#: The oldest Kubernetes minor we deploy to on AKS, and the newest schema kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.31.0", latest_version())
#: Prometheus Operator CRDs (validated by tests/test_crd_schemas.py, as the other CRD kinds are).
CRD_GROUP = "monitoring.coreos.com/v1"
#: API groups of CRD kinds: tests/test_crd_schemas.py validates them against the released CRDs' schemas.
CRD_GROUPS = {"gateway.networking.k8s.io", "security.istio.io", "monitoring.coreos.com"}
APP = "employee-attrition-serving"
#: The model's name in MLServer (its URL path), from the image's model-settings.json.
MODEL_NAME = SERVED_MODEL_NAME


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


def render(overlay: Path) -> list[dict]:
    result = run(BIN / "kubectl", "kustomize", overlay)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(docs: list[dict], kind: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def container(docs: list[dict]) -> dict:
    (server,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return server


def settings(docs: list[dict]) -> dict[str, str]:
    return one(docs, "ConfigMap")["data"]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(KUSTOMIZE / "overlays" / name) for name in OVERLAYS}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly(rendered, overlay, version):
    docs = rendered[overlay]
    kinds = {d["kind"] for d in docs}
    assert {"ServiceAccount", "ConfigMap", "Deployment", "Service", "NetworkPolicy",
            "HorizontalPodAutoscaler", "PodDisruptionBudget", "Gateway", "HTTPRoute"} <= kinds  # fmt: skip
    # Namespaces are created out of band (kustomize/cluster): CD's identity may not create them.
    assert "Namespace" not in kinds
    for doc in docs:
        if doc["apiVersion"].split("/")[0] not in CRD_GROUPS:
            kubernetes_validate.validate(doc, version, strict=True)
        assert doc["metadata"].get("namespace", f"attrition-{overlay}") == f"attrition-{overlay}"


def test_validation_rejects_broken_manifests(rendered):
    deployment = one(rendered["staging"], "Deployment")
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    for broken in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_kustomize_rejects_a_broken_overlay(tmp_path):
    base = os.path.relpath(KUSTOMIZE / "base", tmp_path)  # kustomize takes relative paths only
    good = f"resources:\n  - {base}\n"
    (tmp_path / "kustomization.yaml").write_text(good)
    assert run(BIN / "kubectl", "kustomize", tmp_path).returncode == 0
    broken = (
        "patches:\n  - target: {kind: Deployment}\n"
        "    patch: '[{op: replace, path: /spec/nothing, value: 1}]'\n"
    )
    (tmp_path / "kustomization.yaml").write_text(good + broken)
    result = run(BIN / "kubectl", "kustomize", tmp_path)
    assert result.returncode != 0 and "/spec/nothing" in result.stderr


def test_overlays_differ_where_they_must(rendered):
    staging, production = rendered["staging"], rendered["production"]
    # The HPA owns the replica count: no Deployment sets one (test_exposure.py), the HPAs differ.
    scaling = {n: one(d, "HorizontalPodAutoscaler")["spec"] for n, d in rendered.items()}
    assert scaling["staging"]["maxReplicas"] < scaling["production"]["minReplicas"]
    for docs in rendered.values():
        assert "replicas" not in one(docs, "Deployment")["spec"]
    assert settings(staging)[MODEL_ALIAS_ENV] == "staging"
    assert settings(production)[MODEL_ALIAS_ENV] == "production"
    # By digest (CD and the README replace the placeholder), from the same repository.
    images = {n: container(d)["image"].split("@") for n, d in rendered.items()}
    assert images["staging"][0] == images["production"][0]
    assert images["staging"][0].endswith(".azurecr.io/" + APP)
    for _, digest in images.values():
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    hosts = {n: one(d, "Gateway")["spec"]["listeners"][0]["hostname"]
             for n, d in rendered.items()}  # fmt: skip
    assert hosts["staging"] != hosts["production"]
    # Scrape config and alerts need the Prometheus Operator: production only.
    assert not [d for d in staging if d["apiVersion"] == CRD_GROUP]
    assert {d["kind"] for d in production if d["apiVersion"] == CRD_GROUP} == {
        "ServiceMonitor",
        "PrometheusRule",
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_security_restricted(rendered, overlay):
    docs = rendered[overlay]
    (namespace,) = [d for d in render(KUSTOMIZE / "cluster") if d["kind"] == "Namespace"
                    and d["metadata"]["name"] == f"attrition-{overlay}"]  # fmt: skip
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    # The image's numeric USER, so that runAsNonRoot can be verified without a name lookup.
    user = re.search(r"^USER (\d+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert user and int(user.group(1)) == pod["securityContext"]["runAsUser"]
    server = container(docs)
    context = server["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    assert server["resources"]["requests"] and server["resources"]["limits"]
    # Every place the server writes is a mounted emptyDir (the projected Databricks token is read-only).
    mounts = {m["mountPath"] for m in server["volumeMounts"]}
    env = {e["name"]: e["value"] for e in server["env"]}
    assert {"/tmp", env["ATTRITION_RUNTIME_TMP"]} <= mounts
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert {m["name"] for m in server["volumeMounts"] if not m.get("readOnly")} <= empty_dirs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_probes_and_settings_match_the_server(rendered, overlay):
    docs = rendered[overlay]
    server = container(docs)
    assert {p["name"]: p["containerPort"] for p in server["ports"]} == DEFAULT_PORTS
    # Startup and readiness on the model (test_exposure.py checks them in detail), liveness on the server.
    ready = {"path": f"/v2/models/{MODEL_NAME}/ready", "port": "http"}
    assert server["startupProbe"]["httpGet"] == server["readinessProbe"]["httpGet"] == ready
    assert server["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    startup = server["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # a slow model download
    service_ports = {p["name"]: p["targetPort"] for p in one(docs, "Service")["spec"]["ports"]}
    assert service_ports == {name: name for name in DEFAULT_PORTS}
    # The pods read the generated ConfigMap, and every ATTRITION_* key is one the runtime reads.
    (config_ref,) = [s["configMapRef"]["name"] for s in server["envFrom"] if "configMapRef" in s]
    assert config_ref == one(docs, "ConfigMap")["metadata"]["name"]
    known = {MODEL_ALIAS_ENV, MODEL_URI_ENV, "ATTRITION_MODEL_NAME"}
    known |= {env_name(name) for name in RuntimeSettings.model_fields}
    assert {k for k in settings(docs) if k.startswith("ATTRITION_")} <= known
    selector = one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    assert one(docs, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"] == selector
    assert one(docs, "Service")["spec"]["selector"] == selector


def test_prometheus_resources_are_well_formed(rendered):
    """No JSON schema ships for the Prometheus Operator's CRDs (ServiceMonitor, PrometheusRule), so this
    checks by hand the fields the operator needs and that they point at what the overlay defines."""
    docs = rendered["production"]
    service = one(docs, "Service")
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["name"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names
    rule = one(docs, "PrometheusRule")
    assert rule["metadata"]["name"]
    alerts = {}
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for item in group["rules"]:
            assert set(item) <= {"alert", "expr", "for", "labels", "annotations"}
            assert re.fullmatch(r"\d+[smh]", item["for"])
            assert item["labels"]["severity"] in {"info", "warning", "critical"}
            alerts[item["alert"]] = item["expr"]
    assert "attrition_window_is_drift" in alerts["AttritionInputDrift"]
    assert "attrition_outliers_total" in alerts["AttritionOutlierRateHigh"]
    assert "attrition_estimated_roc_auc" in alerts["AttritionEstimatedRocAucLow"]
    assert "attrition_training_cv_roc_auc" in alerts["AttritionEstimatedRocAucLow"]
    assert "attrition_inference_log_dropped_rows_total" in alerts["AttritionInferenceLogDropping"]


def test_workflows_match_githubs_schema():
    assert {w.name for w in WORKFLOWS} >= {"ci.yml", "cd.yml"}
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_validation_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps: make test\n")
    assert (
        run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", broken).returncode != 0
    )


def test_workflows_run_the_project_commands_and_name_secrets_only():
    ci = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    commands = [s.get("run") for s in ci["jobs"]["test"]["steps"]]
    assert {"make lint", "make test", "make book"} <= set(commands)
    cd = yaml.safe_load((ROOT / ".github/workflows/cd.yml").read_text())
    assert cd["jobs"]["production"]["environment"] == "production"
    assert "staging" in cd["jobs"]["production"]["needs"]
    scripts = {name: "\n".join(s.get("run", "") for s in job["steps"]) for name, job in cd["jobs"].items()}
    for name in OVERLAYS:
        assert "kubectl apply -k ." in scripts[name]
        (deploy,) = [s for s in cd["jobs"][name]["steps"] if "kubectl apply -k ." in s.get("run", "")]
        assert (ROOT / deploy["working-directory"]) == KUSTOMIZE / "overlays" / name
    assert "/aliases/production" in scripts["production"]  # the alias moves in production only
    for name in OVERLAYS:  # the smoke test asks about the model, like the readiness probe
        assert f"/v2/models/{MODEL_NAME}/ready" in scripts[name] and "/infer" in scripts[name]
        assert "/v2/health/ready" not in scripts[name]
    text = (ROOT / ".github/workflows/cd.yml").read_text()
    for line in re.findall(r"^\s*(?:DATABRICKS_\w+|client-id|tenant-id|subscription-id):.*$", text, re.M):
        # Names only: a secret, a variable, or the token the OIDC login step minted.
        assert re.search(r"\$\{\{ (secrets\.\w+|vars\.\w+|steps\.databricks\.outputs\.token) \}\}$", line), (
            line
        )


def test_dockerfile_passes_hadolint():
    result = run(BIN / "hadolint", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_careless_dockerfile(tmp_path):
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\nRUN cd /tmp\n")
    assert run(BIN / "hadolint", careless).returncode != 0


def test_dockerfile_runs_the_tested_scripts():
    text = DOCKERFILE.read_text()
    for script in ("install.sh", "start.sh"):
        path = ROOT / "runtime" / "container" / script
        assert path.stat().st_mode & 0o111, f"{script} must be executable"
        # Syntax only: install.sh needs PyPI (not run here); start.sh runs in test_container.py.
        assert run("sh", "-n", path).returncode == 0
        assert f"runtime/container/{script}" in text
    # tini (PID 1) reaps children and passes signals on to start.sh, which execs MLServer.
    assert re.search(
        r'^ENTRYPOINT \["/usr/bin/tini", "--", "/opt/attrition/start\.sh"\]$', text, re.MULTILINE
    )
    assert re.search(r"apt-get install .*--no-install-recommends tini=\S+", text)
    assert "COPY runtime/container/start.sh /opt/attrition/start.sh" in text
