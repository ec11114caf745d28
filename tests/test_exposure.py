"""What the rendered overlays expose and how their pods come and go, checked offline.

The Gateway routes three exact paths of the one model, never MLServer's repository API (which loads
and unloads models without authentication), over HTTPS only (plain HTTP is redirected), with a
certificate from cert-manager and timeouts that cover the anchor budget. The server's NetworkPolicy
admits each port from its own clients only and lets out DNS and HTTPS to listed addresses; the
inference log compaction's admits nothing and lets out the same. The Deployment's probes
ask about the model; its preStop hook, drain budget and grace period fit together; it is Guaranteed
QoS; replicas spread over zones (strictly in production) and nodes; the HPA alone sets the replica
count; the PDB never keeps an unhealthy pod. CD's patch that pins the model version renders on both
overlays.

Each check is a function returning its problems, and each is also shown to reject a broken input."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

from attrition_runtime.settings import RuntimeSettings

pytestmark = pytest.mark.deploy

BIN = Path(sys.executable).parent
KUSTOMIZE = ROOT / "kustomize"
OVERLAYS = ("staging", "production")
APP = "employee-attrition-serving"
#: The inference log's daily compaction (kustomize/components/inference-log-compaction).
COMPACTION = "employee-attrition-log-compaction"
MODEL_SETTINGS = json.loads((ROOT / "runtime" / "model-settings.json").read_text())
#: MLServer's name for the model: its URL paths are /v2/models/<name>/...
MODEL = MODEL_SETTINGS["name"]
#: The longest a request may take on purpose: an anchor explanation (seconds).
ANCHOR_BUDGET_S = RuntimeSettings().anchor_budget_s
#: After the drain, MLServer closes its worker pool (the workers exit): seconds to allow for it.
WORKERS_CLOSE_S = 10
READY_PATH = f"/v2/models/{MODEL}/ready"
#: What clients need, and all the HTTPRoute may route: scoring, the model's metadata, its readiness.
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
#: The REST port's only clients: the Gateway's proxy pods (Istio labels them with the Gateway's name).
GATEWAY_PODS = {
    "podSelector": {
        "matchExpressions": [
            {
                "key": "gateway.networking.k8s.io/gateway-name",
                "operator": "In",
                "values": ["employee-attrition"],
            }
        ]
    }
}
#: The gRPC port's only clients: pods of the namespace labelled as such.
GRPC_CLIENTS = {
    "podSelector": {
        "matchExpressions": [{"key": "employee-attrition/grpc-client", "operator": "In", "values": ["true"]}]
    }
}
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


def named(docs: list[dict], kind: str, name: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(KUSTOMIZE / "overlays" / name) for name in OVERLAYS}


# --- Gateway API edge -------------------------------------------------------------------------------


def routes(path: str, path_type: str, request: str) -> bool:
    """Whether a route path matches ``request``: Gateway API's (and Kubernetes') rules for Exact and
    PathPrefix (whole path elements); RegularExpression is implementation-specific and refused by
    ``check_routes``, so it is read as the widest match, a plain string prefix."""
    if path_type == "Exact":
        return request == path
    if path_type == "PathPrefix":
        want = [part for part in path.split("/") if part]
        return [part for part in request.split("/") if part][: len(want)] == want
    return request.startswith(path)


def route_paths(route: dict) -> list[dict]:
    """The path matches of every rule, with the rule's backends; a rule without matches matches /."""
    found = []
    for rule in route["spec"].get("rules", []):
        for match in rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]:
            path = match.get("path", {"type": "PathPrefix", "value": "/"})
            found.append({**path, "backends": rule.get("backendRefs", []), "rule": rule})
    return found


def check_routes(gateway: dict, routes_: list[dict]) -> list[str]:
    """Routing, TLS, redirect and timeouts of the API's Gateway and HTTPRoutes."""
    problems = []
    listeners = {item["name"]: item for item in gateway["spec"]["listeners"]}
    https = [item for item in listeners.values() if item["protocol"] == "HTTPS"]
    if not https or any(not item.get("tls", {}).get("certificateRefs") for item in https):
        problems.append("no HTTPS listener with a certificate")
    if not gateway["metadata"].get("annotations", {}).get("cert-manager.io/cluster-issuer"):
        problems.append("no cert-manager issuer")
    served = []
    for route in routes_:
        parents = {ref.get("sectionName") for ref in route["spec"]["parentRefs"]}
        plain = {name for name in parents if listeners.get(name, {}).get("protocol") == "HTTP"}
        rules = route["spec"].get("rules", [])
        if plain or None in parents:
            # Plain HTTP (or every listener): redirect to HTTPS, never a backend.
            redirects = [f for r in rules for f in r.get("filters", []) if f["type"] == "RequestRedirect"]
            if (
                any(r.get("backendRefs") for r in rules)
                or not redirects
                or any(f["requestRedirect"].get("scheme") != "https" for f in redirects)
            ):
                problems.append(f"{route['metadata']['name']}: plain HTTP is not redirected to HTTPS")
            continue
        served += route_paths(route)
    for p in served:
        if p["type"] != "Exact":
            problems.append(f"{p['value']}: type {p['type']}, not Exact")
        for backend in p["backends"]:
            if (backend["name"], backend.get("port")) != (APP, 8080):
                problems.append(f"{p['value']}: backend {backend}")
        for request in NOT_ROUTED:
            if routes(p["value"], p["type"], request):
                problems.append(f"{p['value']} ({p['type']}) routes {request}")
        timeout = p["rule"].get("timeouts", {}).get("request", "")
        if not timeout.endswith("s") or not timeout[:-1].isdigit() or int(timeout[:-1]) <= ANCHOR_BUDGET_S:
            problems.append(f"{p['value']}: request timeout {timeout!r} does not cover the anchor budget")
    if {p["value"] for p in served} != ALLOWED_PATHS:
        problems.append(f"routes {sorted(p['value'] for p in served)}, not {sorted(ALLOWED_PATHS)}")
    return problems


def edge(docs: list[dict]) -> tuple[dict, list[dict]]:
    return one(docs, "Gateway"), [d for d in docs if d["kind"] == "HTTPRoute"]


def test_routing_helper_follows_gateway_api():
    assert routes("/v2", "PathPrefix", "/v2/repository/models/x/unload")
    assert routes("/", "PathPrefix", "/anything")
    assert not routes("/v2/models/a", "PathPrefix", "/v2/models/ab")  # whole path elements only
    assert routes("/v2/models/a", "PathPrefix", "/v2/models/a/")
    assert routes("/v2/models/a", "RegularExpression", "/v2/models/ab")
    assert routes("/v2/models/a", "Exact", "/v2/models/a")
    assert not routes("/v2/models/a", "Exact", "/v2/models/a/ready")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_routes_only_the_model_behind_tls(rendered, overlay):
    docs = rendered[overlay]
    assert check_routes(*edge(docs)) == []
    # Gateway API, not Ingress: nothing of the retired ingress-nginx is left.
    assert not [d for d in docs if d["kind"] == "Ingress"]
    assert "nginx.ingress.kubernetes.io" not in json.dumps(docs)
    gateway, routes_ = edge(docs)
    hosts = {listener["hostname"] for listener in gateway["spec"]["listeners"]}
    assert len(hosts) == 1 and all(set(r["spec"]["hostnames"]) == hosts for r in routes_)


def test_route_checks_reject_broken_routes(rendered):
    gateway, good = edge(rendered["production"])
    assert check_routes(gateway, good) == []

    def api(routes_: list[dict]) -> dict:
        return next(r for r in routes_ if r["metadata"]["name"] == APP)

    def first_rule(routes_: list[dict]) -> dict:
        return api(routes_)["spec"]["rules"][0]

    def api_on_plain_http(routes_: list[dict]) -> None:
        api(routes_)["spec"]["parentRefs"][0]["sectionName"] = "http"

    cases = {
        "/v2 (PathPrefix) routes /v2/repository": lambda g, r: first_rule(r)["matches"][0]["path"].update(
            type="PathPrefix", value="/v2"
        ),
        "type PathPrefix, not Exact": lambda g, r: first_rule(r)["matches"][0]["path"].update(
            type="PathPrefix"
        ),
        "routes /v2/repository/index": lambda g, r: first_rule(r)["matches"].append(
            {"path": {"type": "Exact", "value": "/v2/repository/index"}}
        ),
        "/ (PathPrefix) routes": lambda g, r: first_rule(r).pop("matches"),
        "no HTTPS listener": lambda g, r: g["spec"]["listeners"][1]["tls"].pop("certificateRefs"),
        "no cert-manager": lambda g, r: g["metadata"]["annotations"].clear(),
        "not redirected": lambda g, r: api_on_plain_http(r),
        "does not cover the anchor budget": lambda g, r: first_rule(r).update(timeouts={"request": "5s"}),
    }
    for expected, change in cases.items():
        gateway_copy, routes_copy = copy.deepcopy(gateway), copy.deepcopy(good)
        change(gateway_copy, routes_copy)
        problems = check_routes(gateway_copy, routes_copy)
        assert any(expected in problem for problem in problems), (expected, problems)


# --- NetworkPolicy ---------------------------------------------------------------------------------


def peers(rule: dict, direction: str) -> list[dict]:
    return rule.get("from" if direction == "ingress" else "to", [])


def check_network_policy(policy: dict) -> list[str]:
    """Each port admits its own clients only; out: DNS to kube-system and HTTPS to listed CIDRs."""
    problems = []
    spec = policy["spec"]
    if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
        problems.append("ingress and egress are not both isolated")
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    allowed = {"http": [GATEWAY_PODS], "grpc": [GRPC_CLIENTS], "metrics": [monitoring]}
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
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "NetworkPolicy"} == {APP, COMPACTION}
    policy = named(docs, "NetworkPolicy", APP)
    assert check_network_policy(policy) == []
    # It applies to the server's pods, and the ports it names are theirs.
    pod = one(docs, "Deployment")["spec"]["template"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (server,) = pod["spec"]["containers"]
    ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ports == {p["name"] for p in server["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_compaction_pods_admit_nothing_and_reach_what_the_server_reaches(rendered, overlay):
    docs = rendered[overlay]
    policy = named(docs, "NetworkPolicy", COMPACTION)
    assert check_network_policy(policy) == []
    assert policy["spec"]["ingress"] == [] and "Ingress" in policy["spec"]["policyTypes"]
    # The egress rules (and so the cluster's CIDRs) are the server's, copied by the component.
    assert policy["spec"]["egress"] == named(docs, "NetworkPolicy", APP)["spec"]["egress"]
    pod = named(docs, "CronJob", COMPACTION)["spec"]["jobTemplate"]["spec"]["template"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_network_policy_check_rejects_open_policies(rendered):
    good = named(rendered["production"], "NetworkPolicy", APP)
    assert check_network_policy(good) == []
    cases = {
        "admits every source": lambda s: s["ingress"][0].pop("from"),
        "port grpc admits": lambda s: s["ingress"][1]["from"].append({"namespaceSelector": {}}),
        "port http admits": lambda s: s["ingress"][0]["from"].append({"podSelector": {}}),
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
    drain = {e["name"]: e.get("value") for e in server.get("env", [])}.get("ATTRITION_DRAIN_S", "")
    if len(command) != 2 or command[0] != "sleep" or not command[1].isdigit() or int(command[1]) < 5:
        problems.append(f"no preStop sleep (got {command})")
    elif not drain.isdigit() or int(drain) < ANCHOR_BUDGET_S + 5:
        problems.append(f"ATTRITION_DRAIN_S {drain!r} does not cover an anchor explanation in flight")
    else:
        needed = int(command[1]) + int(drain) + WORKERS_CLOSE_S
        if pod.get("terminationGracePeriodSeconds", 30) < needed:
            problems.append(f"terminationGracePeriodSeconds under {needed} s (preStop + drain + close)")
    resources = server.get("resources", {})
    if not resources.get("limits") or resources.get("requests") != resources.get("limits"):
        problems.append("not Guaranteed QoS: requests differ from limits")
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


def test_production_spreads_over_zones_strictly_and_evicts_unhealthy_pods(rendered):
    for overlay, docs in rendered.items():
        constraints = one(docs, "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"]
        spread = {c["topologyKey"]: c["whenUnsatisfiable"] for c in constraints}
        zone = "DoNotSchedule" if overlay == "production" else "ScheduleAnyway"
        assert spread == {"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": "ScheduleAnyway"}
        assert one(docs, "PodDisruptionBudget")["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


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
            terminationGracePeriodSeconds=40
        ),
        "does not cover an anchor": lambda d: server(d)["env"].append(
            {"name": "ATTRITION_DRAIN_S", "value": "5"}
        ),
        "not Guaranteed QoS": lambda d: server(d)["resources"]["requests"].update(memory="1Gi"),
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
    # `kustomize edit set image` moves the compaction to the same digest.
    compaction = named(docs, "CronJob", COMPACTION)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [c["image"] for c in compaction["containers"]] == [image]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["ATTRITION_MODEL_URI"] == f"models:/{MODEL}/7"
    assert check_rollout(one(docs, "Deployment"), one(docs, "HorizontalPodAutoscaler")) == []
