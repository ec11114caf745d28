"""What the rendered overlays expose and how their pods come and go, checked offline.

The Ingress routes three exact paths of the one model, never MLServer's repository API (which loads
and unloads models without authentication), with TLS, authentication, rate and body-size limits.
The NetworkPolicy admits each port from its own clients only and lets out DNS and HTTPS to listed
addresses. The Deployment's probes ask about the model, a preStop hook and the grace period cover
in-flight requests and the anchor budget, replicas spread over zones and nodes, and the HPA alone
sets the replica count. CD's patch that pins the model version renders on both overlays.

Each check is a function returning its problems, and each is also shown to reject a broken input."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from helpers import ROOT

from attrition_runtime.settings import RuntimeSettings

pytestmark = pytest.mark.deploy

BIN = Path(sys.executable).parent
KUSTOMIZE = ROOT / "kustomize"
OVERLAYS = ("staging", "production")
APP = "employee-attrition-serving"
MODEL_SETTINGS = json.loads((ROOT / "runtime" / "model-settings.json").read_text())
#: MLServer's name for the model: its URL paths are /v2/models/<name>/...
MODEL = MODEL_SETTINGS["name"]
#: The longest a request may take on purpose: an anchor explanation (seconds).
ANCHOR_BUDGET_S = RuntimeSettings().anchor_budget_s
READY_PATH = f"/v2/models/{MODEL}/ready"
#: What clients need, and all the Ingress may route: scoring, the model's metadata, its readiness.
ALLOWED_PATHS = {f"/v2/models/{MODEL}/infer", f"/v2/models/{MODEL}", READY_PATH}
#: Requests no rule may route: the repository API first, then the rest of what MLServer answers.
NOT_ROUTED = (
    "/v2/repository/models/x/unload",
    f"/v2/repository/models/{MODEL}/unload",
    f"/v2/repository/models/{MODEL}/load",
    "/v2/repository/index",
    "/v2/health/ready",
    "/v2/health/live",
    "/v2",
    "/v2/docs",
    f"/v2/models/{MODEL}/docs",
    f"/v2/models/{MODEL}/versions/1/infer",
    f"/v2/models/{MODEL}/infer_stream",
    "/v2/models/another-model/infer",
    "/invocations",
    "/ping",
    "/metrics",
    "/",
)
INGRESS_NAMESPACES = {"app-routing-system", "ingress-nginx"}
NGINX = "nginx.ingress.kubernetes.io/"
#: The patch CD adds to pin the model version (.github/workflows/cd.yml, as jq writes it).
CD_MODEL_PATCH_JQ = (
    '[{op: "add", path: "/spec/template/spec/containers/0/env/-", '
    'value: {name: "ATTRITION_MODEL_URI", value: $uri}}]'
)


def render(overlay: Path) -> list[dict]:
    result = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(overlay)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(docs: list[dict], kind: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(KUSTOMIZE / "overlays" / name) for name in OVERLAYS}


# --- Ingress ---------------------------------------------------------------------------------------


def routes(path: str, path_type: str, request: str) -> bool:
    """Whether an Ingress path routes ``request``: Kubernetes' rules for Exact and Prefix (whole
    path elements), and a plain string prefix for ImplementationSpecific, which is how ingress-nginx
    reads it (with use-regex it is a regular expression, which ``check_ingress`` refuses)."""
    if path_type == "Exact":
        return request == path
    if path_type == "Prefix":
        want = [part for part in path.split("/") if part]
        return [part for part in request.split("/") if part][: len(want)] == want
    return request.startswith(path)


def ingress_paths(ingress: dict) -> list[dict]:
    return [p for rule in ingress["spec"].get("rules", []) for p in rule.get("http", {}).get("paths", [])]


def check_ingress(ingress: dict) -> list[str]:
    """Routing, TLS and limits of the API's Ingress."""
    problems = []
    spec, notes = ingress["spec"], ingress["metadata"].get("annotations", {})
    if "defaultBackend" in spec:
        problems.append("a defaultBackend routes every path")
    paths = ingress_paths(ingress)
    for p in paths:
        if p["pathType"] != "Exact":
            problems.append(f"{p['path']}: pathType {p['pathType']}, not Exact")
        backend = p["backend"].get("service", {})
        if backend != {"name": APP, "port": {"name": "http"}}:
            problems.append(f"{p['path']}: backend {backend}")
        for request in NOT_ROUTED:
            if routes(p["path"], p["pathType"], request):
                problems.append(f"{p['path']} ({p['pathType']}) routes {request}")
    if {p["path"] for p in paths} != ALLOWED_PATHS:
        problems.append(f"routes {sorted(p['path'] for p in paths)}, not {sorted(ALLOWED_PATHS)}")
    for request in ALLOWED_PATHS:
        if not any(routes(p["path"], p["pathType"], request) for p in paths):
            problems.append(f"{request} is not routed")
    for key in notes:
        if key.startswith(NGINX) and (key.endswith("-snippet") or key.endswith("use-regex")):
            problems.append(f"{key}: snippets and regular expressions are not allowed")
    # TLS on every host, the certificate in a named secret (cert-manager's or one made by hand).
    tls_hosts = {h for t in spec.get("tls", []) if t.get("secretName") for h in t.get("hosts", [])}
    for rule in spec.get("rules", []):
        if rule.get("host") not in tls_hosts:
            problems.append(f"host {rule.get('host')} has no TLS secret")
    if not notes.get("cert-manager.io/cluster-issuer"):
        problems.append("no cert-manager issuer")
    if notes.get(NGINX + "force-ssl-redirect") != "true":
        problems.append("plain HTTP is not redirected")
    for limit in ("limit-rps", "limit-connections"):
        if not notes.get(NGINX + limit, "").isdigit() or int(notes[NGINX + limit]) < 1:
            problems.append(f"no {limit}")
    if notes.get(NGINX + "proxy-body-size") != "2m":
        problems.append("the request body is not limited to 2m (the server's own limit)")
    timeout = notes.get(NGINX + "proxy-read-timeout", "60")  # ingress-nginx's default
    if not timeout.isdigit() or int(timeout) <= ANCHOR_BUDGET_S:
        problems.append(
            f"proxy-read-timeout {timeout} s does not cover the {ANCHOR_BUDGET_S} s anchor budget"
        )
    return problems


def check_authentication(ingress: dict) -> list[str]:
    """Every request is authenticated by an external service (oauth2-proxy) before it is routed."""
    notes = ingress["metadata"].get("annotations", {})
    auth_url = urlparse(notes.get(NGINX + "auth-url", ""))
    signin = urlparse(notes.get(NGINX + "auth-signin", ""))
    problems = []
    if auth_url.scheme not in {"http", "https"} or not auth_url.netloc:
        problems.append(f"auth-url {notes.get(NGINX + 'auth-url')!r} is not an absolute URL")
    if signin.scheme != "https" or not signin.netloc:
        problems.append(f"auth-signin {notes.get(NGINX + 'auth-signin')!r} is not an https URL")
    return problems


def test_routing_helper_follows_kubernetes():
    assert routes("/v2", "Prefix", "/v2/repository/models/x/unload")
    assert routes("/", "Prefix", "/anything")
    assert not routes("/v2/models/a", "Prefix", "/v2/models/ab")  # whole path elements only
    assert routes("/v2/models/a", "Prefix", "/v2/models/a/")
    assert routes("/v2/models/a", "ImplementationSpecific", "/v2/models/ab")
    assert routes("/v2/models/a", "Exact", "/v2/models/a")
    assert not routes("/v2/models/a", "Exact", "/v2/models/a/ready")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_routes_only_the_model_behind_tls(rendered, overlay):
    ingress = one(rendered[overlay], "Ingress")
    assert check_ingress(ingress) == []
    assert not [p for p in ingress_paths(ingress) if routes(p["path"], p["pathType"], NOT_ROUTED[0])]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_requires_authentication(rendered, overlay):
    """Required in production; staging shares the component, so it is required there too."""
    assert check_authentication(one(rendered[overlay], "Ingress")) == []


def test_ingress_checks_reject_broken_ingresses(rendered):
    good = one(rendered["production"], "Ingress")
    assert check_ingress(good) == [] and check_authentication(good) == []

    def broken(change) -> dict:
        ingress = copy.deepcopy(good)
        change(ingress)
        return ingress

    def first_path(ingress: dict) -> dict:
        return ingress["spec"]["rules"][0]["http"]["paths"][0]

    def notes(ingress: dict) -> dict:
        return ingress["metadata"]["annotations"]

    cases = {
        "/v2 (Prefix) routes /v2/repository": lambda i: first_path(i).update(path="/v2", pathType="Prefix"),
        "pathType Prefix": lambda i: first_path(i).update(pathType="Prefix"),
        "ImplementationSpecific": lambda i: first_path(i).update(pathType="ImplementationSpecific"),
        "routes /v2/repository/index": lambda i: i["spec"]["rules"][0]["http"]["paths"].append(
            {**first_path(i), "path": "/v2/repository/index"}
        ),
        "defaultBackend": lambda i: i["spec"].update(defaultBackend=first_path(i)["backend"]),
        "has no TLS secret": lambda i: i["spec"].pop("tls"),
        "no cert-manager": lambda i: notes(i).pop("cert-manager.io/cluster-issuer"),
        "no limit-rps": lambda i: notes(i).pop(NGINX + "limit-rps"),
        "not limited to 2m": lambda i: notes(i).update({NGINX + "proxy-body-size": "0"}),
        "does not cover": lambda i: notes(i).update({NGINX + "proxy-read-timeout": "5"}),
        "snippets": lambda i: notes(i).update({NGINX + "configuration-snippet": "return 200;"}),
    }
    for expected, change in cases.items():
        problems = check_ingress(broken(change))
        assert any(expected in problem for problem in problems), (expected, problems)
    assert check_authentication(broken(lambda i: notes(i).pop(NGINX + "auth-url")))
    assert check_authentication(broken(lambda i: notes(i).update({NGINX + "auth-signin": "/oauth2/start"})))


# --- NetworkPolicy ---------------------------------------------------------------------------------


def peers(rule: dict, direction: str) -> list[dict]:
    return rule.get("from" if direction == "ingress" else "to", [])


def check_network_policy(policy: dict) -> list[str]:
    """Each port admits its own clients only; out: DNS to kube-system and HTTPS to listed CIDRs."""
    problems = []
    spec = policy["spec"]
    if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
        problems.append("ingress and egress are not both isolated")
    same_namespace = {"podSelector": {}}
    ingress_controller = {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(INGRESS_NAMESPACES)}
            ]
        }
    }
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    allowed = {
        "http": [same_namespace, ingress_controller],
        "grpc": [same_namespace],
        "metrics": [monitoring],
    }
    for rule in spec.get("ingress", []):
        sources = peers(rule, "ingress")
        if not sources or not rule.get("ports"):
            problems.append(f"an ingress rule admits every {'port' if sources else 'source'}")
        for port in rule.get("ports", []):
            for source in sources:
                if normalized(source) not in [normalized(peer) for peer in allowed.get(port["port"], [])]:
                    problems.append(f"port {port['port']} admits {source}")
    for rule in spec.get("egress", []):
        targets, ports = peers(rule, "egress"), {p["port"] for p in rule.get("ports", [])}
        if not targets or not ports:
            problems.append(f"an egress rule lets out to every {'port' if targets else 'address'}")
        for target in targets:
            block = target.get("ipBlock", {}).get("cidr")
            if block in {"0.0.0.0/0", "::/0"}:
                problems.append(f"egress to {block}")
            if ports == {53}:
                dns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                       "podSelector": {"matchExpressions": [{"key": "k8s-app", "operator": "In",
                                                             "values": ["kube-dns"]}]}}  # fmt: skip
                if target != dns:
                    problems.append(f"DNS to {target}")
            elif ports == {443}:
                if set(target) != {"ipBlock"}:
                    problems.append(f"HTTPS to {target}, not to listed addresses")
            else:
                problems.append(f"egress to ports {sorted(ports)}")
    return problems


def normalized(peer: dict) -> dict:
    """A peer with its selector values sorted, for comparison."""
    peer = copy.deepcopy(peer)
    for selector in peer.values():
        for expression in selector.get("matchExpressions", []) if isinstance(selector, dict) else []:
            expression["values"] = sorted(expression["values"])
    return peer


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_admits_only_its_clients(rendered, overlay):
    docs = rendered[overlay]
    policy = one(docs, "NetworkPolicy")
    assert check_network_policy(policy) == []
    # It applies to the server's pods, and the ports it names are theirs.
    pod = one(docs, "Deployment")["spec"]["template"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (server,) = pod["spec"]["containers"]
    named = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert named == {p["name"] for p in server["ports"]}


def test_network_policy_check_rejects_open_policies(rendered):
    good = one(rendered["production"], "NetworkPolicy")
    assert check_network_policy(good) == []
    cases = {
        "admits every source": lambda s: s["ingress"][0].pop("from"),
        "port grpc admits": lambda s: s["ingress"][1]["from"].append({"namespaceSelector": {}}),
        "port metrics admits": lambda s: s["ingress"][2]["from"].append({"podSelector": {}}),
        "lets out to every address": lambda s: s["egress"][1].pop("to"),
        "egress to 0.0.0.0/0": lambda s: s["egress"][1]["to"].append({"ipBlock": {"cidr": "0.0.0.0/0"}}),
        "DNS to": lambda s: s["egress"][0]["to"][0].pop("podSelector"),
        "HTTPS to": lambda s: s["egress"][1]["to"].append({"namespaceSelector": {}}),
        "not both isolated": lambda s: s["policyTypes"].remove("Egress"),
    }
    for expected, change in cases.items():
        policy = copy.deepcopy(good)
        change(policy["spec"])
        problems = check_network_policy(policy)
        assert any(expected in problem for problem in problems), (expected, problems)


# --- Deployment: probes, rollouts, scaling -----------------------------------------------------------


def check_rollout(deployment: dict, autoscaler: dict) -> list[str]:
    """Probes on the model; pods leave the endpoints before SIGTERM and get the time to finish."""
    problems = []
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    if "replicas" in spec:
        problems.append("replicas is set, and an HPA owns the count")
    if autoscaler["spec"]["scaleTargetRef"] != {"apiVersion": "apps/v1", "kind": "Deployment",
                                                "name": deployment["metadata"]["name"]}:  # fmt: skip
        problems.append("the HPA scales something else")
    for probe in ("startupProbe", "readinessProbe"):
        get = server.get(probe, {}).get("httpGet", {})
        if get.get("path") != READY_PATH:
            problems.append(f"{probe} asks {get.get('path')}, not the model ({READY_PATH})")
    if server.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/v2/health/live":
        problems.append("livenessProbe is not the server's liveness")
    if server.get("startupProbe", {}).get("timeoutSeconds", 1) < 2:
        problems.append("startupProbe keeps the 1 s default timeout")
    command = server.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if len(command) != 2 or command[0] != "sleep" or not command[1].isdigit() or int(command[1]) < 5:
        problems.append(f"no preStop sleep (got {command})")
    else:
        needed = int(command[1]) + ANCHOR_BUDGET_S + 5  # + in-flight anchor + MLServer's shutdown
        if pod.get("terminationGracePeriodSeconds", 30) < needed:
            problems.append(f"terminationGracePeriodSeconds under {needed} s")
    keys = {c["topologyKey"] for c in pod.get("topologySpreadConstraints", [])}
    for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname"):
        if key not in keys:
            problems.append(f"no spread over {key}")
    if "@sha256:" not in server["image"]:
        problems.append(f"image {server['image']} is not by digest")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollouts_drop_nothing_and_probes_ask_about_the_model(rendered, overlay):
    docs = rendered[overlay]
    assert check_rollout(one(docs, "Deployment"), one(docs, "HorizontalPodAutoscaler")) == []


def test_rollout_check_rejects_broken_deployments(rendered):
    docs = rendered["staging"]
    good, hpa = one(docs, "Deployment"), one(docs, "HorizontalPodAutoscaler")
    assert check_rollout(good, hpa) == []

    def server(d: dict) -> dict:
        return d["spec"]["template"]["spec"]["containers"][0]

    cases = {
        "replicas is set": lambda d: d["spec"].update(replicas=2),
        "readinessProbe asks /v2/health/ready": lambda d: server(d)["readinessProbe"]["httpGet"].update(
            path="/v2/health/ready"
        ),
        "startupProbe asks": lambda d: server(d)["startupProbe"]["httpGet"].update(path="/v2/health/ready"),
        "1 s default timeout": lambda d: server(d)["startupProbe"].pop("timeoutSeconds"),
        "no preStop": lambda d: server(d).pop("lifecycle"),
        "terminationGracePeriodSeconds under": lambda d: d["spec"]["template"]["spec"].update(
            terminationGracePeriodSeconds=20
        ),
        "no spread over topology.kubernetes.io/zone": lambda d: d["spec"]["template"]["spec"][
            "topologySpreadConstraints"
        ].pop(0),
        "not by digest": lambda d: server(d).update(image="myregistry.azurecr.io/app:latest"),
    }
    for expected, change in cases.items():
        broken = copy.deepcopy(good)
        change(broken)
        problems = check_rollout(broken, hpa)
        assert any(expected in problem for problem in problems), (expected, problems)


# --- CD's edits to the overlays ----------------------------------------------------------------------


def cd_edit(overlay: Path, image: str, model_uri: str) -> None:
    """What CD's `kustomize edit set image`, `edit add patch` and `edit set annotation` write."""
    path = overlay / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text())
    name, digest = image.split("@")
    kustomization["images"] = [{"name": APP, "newName": name, "digest": digest}]
    patch = [{"op": "add", "path": "/spec/template/spec/containers/0/env/-",
              "value": {"name": "ATTRITION_MODEL_URI", "value": model_uri}}]  # fmt: skip
    kustomization.setdefault("patches", []).append(
        {"patch": json.dumps(patch), "target": {"kind": "Deployment", "name": APP}}
    )
    kustomization["commonAnnotations"] = {"attrition/deployed-by-run": "12345"}
    path.write_text(yaml.safe_dump(kustomization))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cd_pins_image_digest_and_model_version(tmp_path, overlay):
    workflow = (ROOT / ".github" / "workflows" / "cd.yml").read_text()
    assert workflow.count(CD_MODEL_PATCH_JQ) == 2  # the patch below is the one both deploy jobs add
    copy_root = tmp_path / "kustomize"
    shutil.copytree(KUSTOMIZE, copy_root)
    image = "myregistry.azurecr.io/employee-attrition-serving@sha256:" + "ab" * 32
    cd_edit(copy_root / "overlays" / overlay, image, f"models:/{MODEL}/7")
    docs = render(copy_root / "overlays" / overlay)
    (server,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert server["image"] == image
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["ATTRITION_MODEL_URI"] == f"models:/{MODEL}/7"
    assert check_rollout(one(docs, "Deployment"), one(docs, "HorizontalPodAutoscaler")) == []
