"""What ships to AKS, checked offline: both Kustomize overlays render and validate against the
Kubernetes schemas, differ where they must and keep the Pod Security hardening in every workload (the
server and the inference log's daily compaction); the workflows match GitHub's schema; the Dockerfile
passes hadolint. Each validator is also shown to reject a broken input."""

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

from attrition.cli import parser as cli_parser
from attrition.inference_log.retention import min_retention_days
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
#: The inference log's daily compaction (kustomize/components/inference-log-compaction).
COMPACTION = "employee-attrition-log-compaction"
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


def named(docs: list[dict], kind: str, name: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def container(docs: list[dict]) -> dict:
    (server,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return server


def pod_templates(docs: list[dict]) -> dict[str, dict]:
    """Every workload's pod template by kind/name: the Deployment's, the CronJob's Job's."""
    templates = {}
    for doc in docs:
        if doc["kind"] == "Deployment":
            templates[f"Deployment/{doc['metadata']['name']}"] = doc["spec"]["template"]
        elif doc["kind"] == "CronJob":
            templates[f"CronJob/{doc['metadata']['name']}"] = doc["spec"]["jobTemplate"]["spec"]["template"]
    return templates


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
    assert {"ServiceAccount", "ConfigMap", "Deployment", "Service", "NetworkPolicy", "CronJob",
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


def hardening_problems(pod: dict) -> list[str]:
    """Pod Security "restricted" and more, for one pod spec: non-root as the image's numeric USER,
    seccomp, no privilege escalation, read-only root, no capabilities, resources, writable mounts
    on emptyDirs only."""
    problems = []
    context = pod.get("securityContext", {})
    user = re.search(r"^USER (\d+)", DOCKERFILE.read_text(), re.MULTILINE)
    if context.get("runAsNonRoot") is not True or context.get("runAsUser") != int(user.group(1)):
        problems.append("not non-root as the image's USER")
    if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("no RuntimeDefault seccomp profile")
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for c in pod["containers"]:
        own = c.get("securityContext", {})
        if own.get("allowPrivilegeEscalation") is not False or own.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{c['name']}: privilege escalation or a writable root filesystem")
        if own.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{c['name']}: capabilities not all dropped")
        if not (c.get("resources", {}).get("requests") and c.get("resources", {}).get("limits")):
            problems.append(f"{c['name']}: no resource requests and limits")
        if {m["name"] for m in c.get("volumeMounts", []) if not m.get("readOnly")} - empty_dirs:
            problems.append(f"{c['name']}: writes outside an emptyDir")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_security_restricted(rendered, overlay):
    docs = rendered[overlay]
    (namespace,) = [d for d in render(KUSTOMIZE / "cluster") if d["kind"] == "Namespace"
                    and d["metadata"]["name"] == f"attrition-{overlay}"]  # fmt: skip
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    templates = pod_templates(docs)
    assert set(templates) == {f"Deployment/{APP}", f"CronJob/{COMPACTION}"}
    problems = {name: hardening_problems(t["spec"]) for name, t in templates.items()}
    assert problems == dict.fromkeys(templates, [])
    # The server's scratch space (MLServer's metrics and environments) is one of its emptyDirs.
    server = container(docs)
    env = {e["name"]: e["value"] for e in server["env"]}
    assert {"/tmp", env["ATTRITION_RUNTIME_TMP"]} <= {m["mountPath"] for m in server["volumeMounts"]}


def test_hardening_check_rejects_careless_pods(rendered):
    pod = pod_templates(rendered["staging"])[f"CronJob/{COMPACTION}"]["spec"]
    assert hardening_problems(pod) == []
    cases = {
        "not non-root": lambda p: p["securityContext"].update(runAsUser=0),
        "seccomp": lambda p: p["securityContext"].pop("seccompProfile"),
        "writable root": lambda p: p["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
        "capabilities": lambda p: p["containers"][0]["securityContext"]["capabilities"].update(drop=[]),
        "no resource": lambda p: p["containers"][0].pop("resources"),
        "outside an emptyDir": lambda p: p["volumes"][0].pop("emptyDir"),
    }
    for expected, change in cases.items():
        broken = copy.deepcopy(pod)
        change(broken)
        assert any(expected in problem for problem in hardening_problems(broken)), expected


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
    assert named(docs, "NetworkPolicy", APP)["spec"]["podSelector"]["matchLabels"] == selector
    assert one(docs, "Service")["spec"]["selector"] == selector


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_compaction_runs_daily_on_the_servers_log_as_the_server(rendered, overlay):
    """The CronJob runs `attrition log compact` with the server's image, identity and settings (so on
    the log the server writes, on ADLS), and keeps what the monthly outcomes report joins."""
    docs = rendered[overlay]
    cronjob = named(docs, "CronJob", COMPACTION)
    server_pod = one(docs, "Deployment")["spec"]["template"]
    pod = pod_templates(docs)[f"CronJob/{COMPACTION}"]
    (compact,) = pod["spec"]["containers"]
    assert compact["image"] == container(docs)["image"]
    assert pod["spec"]["serviceAccountName"] == server_pod["spec"]["serviceAccountName"]
    identity = "azure.workload.identity/use"
    assert pod["metadata"]["labels"][identity] == server_pod["metadata"]["labels"][identity] == "true"
    assert compact["envFrom"] == [{"configMapRef": {"name": one(docs, "ConfigMap")["metadata"]["name"]}}]
    assert "env" not in compact  # the location and the retention come from the settings alone
    assert settings(docs)["ATTRITION_INFERENCE_LOG"].startswith("abfss://")  # shared by every pod
    retention = int(settings(docs)[env_name("inference_log_retention_days")])
    assert retention >= min_retention_days()
    # The image's PID 1 (tini) before the command, as in the image's ENTRYPOINT, and the command parses.
    tini, dashes, *command = compact["command"]
    assert f'ENTRYPOINT ["{tini}", "{dashes}",' in DOCKERFILE.read_text()
    assert command == ["attrition", "log", "compact"] and "args" not in compact
    assert cli_parser().parse_args(command[1:]).func.__name__ == "_log_compact"
    spec, job = cronjob["spec"], cronjob["spec"]["jobTemplate"]["spec"]
    assert spec["schedule"].split()[2:] == ["*", "*", "*"] and spec["timeZone"] == "Etc/UTC"  # daily
    assert spec["concurrencyPolicy"] == "Forbid" and spec["startingDeadlineSeconds"] > 0
    assert 1 <= spec["successfulJobsHistoryLimit"] <= 5 and 1 <= spec["failedJobsHistoryLimit"] <= 5
    assert 0 < job["activeDeadlineSeconds"] <= 6 * 3600 and job["backoffLimit"] <= 3
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["automountServiceAccountToken"] is False
    # Its pods are none of the server's: no Service, PDB or server NetworkPolicy selects them.
    labels = pod["metadata"]["labels"]
    for selector in (one(docs, "Service")["spec"]["selector"],
                     one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                     named(docs, "NetworkPolicy", APP)["spec"]["podSelector"]["matchLabels"]):  # fmt: skip
        assert not selector.items() <= labels.items()


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
