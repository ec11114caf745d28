"""Who may call the API and with what the pods reach the registry, checked offline on the rendered
overlays: every request at the Gateway needs an Entra ID token of the tenant, for the API's audience,
with the scoring app role; the pods hold no stored secret and the Databricks SDK (under MLflow)
authenticates with the projected ServiceAccount token (workload identity federation), which this
test proves by resolving the SDK's auth from the rendered env against a token file it writes and a
token exchange on a local stand-in of the workspace; CD's Role can apply the overlay and no more."""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import ROOT
from test_exposure import KUSTOMIZE, OVERLAYS, one, render

pytestmark = pytest.mark.deploy

#: The role the AuthorizationPolicy requires, and the audience of the API's tokens.
SCORING_ROLE = "Attrition.Score"
AUDIENCE = "api://employee-attrition-serving"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(KUSTOMIZE / "overlays" / name) for name in OVERLAYS}


def targets_gateway(policy: dict, gateway: dict) -> bool:
    refs = policy["spec"].get("targetRefs", [])
    return refs == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["metadata"]["name"]}
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_requires_an_entra_id_token_with_the_role(rendered, overlay):
    docs = rendered[overlay]
    gateway, authn, authz = (
        one(docs, "Gateway"),
        one(docs, "RequestAuthentication"),
        one(docs, "AuthorizationPolicy"),
    )
    assert targets_gateway(authn, gateway) and targets_gateway(authz, gateway)
    (rule,) = authn["spec"]["jwtRules"]
    tenant = urllib.parse.urlparse(rule["issuer"]).path.split("/")[1]
    assert rule["issuer"] == f"https://login.microsoftonline.com/{tenant}/v2.0"
    assert rule["jwksUri"] == f"https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys"
    assert rule["audiences"] == [AUDIENCE]
    # ALLOW with one rule: anything else, a request without a token included, is denied.
    assert authz["spec"]["action"] == "ALLOW"
    (allow,) = authz["spec"]["rules"]
    assert allow["from"] == [{"source": {"requestPrincipals": [f"{rule['issuer']}/*"]}}]
    assert {c["key"]: c["values"] for c in allow["when"]} == {
        "request.auth.claims[roles]": [SCORING_ROLE],
        "request.auth.audiences": [AUDIENCE],
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_stored_secret_reaches_the_pods(rendered, overlay):
    docs = rendered[overlay]
    text = json.dumps(docs)
    assert "DATABRICKS_TOKEN" not in text and "secretKeyRef" not in text
    assert not [d for d in docs if d["kind"] == "Secret"]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    # The one Secret a pod reads is the inference log's pseudonymisation key (employee ids are stored as
    # its HMAC): it grants access to nothing, so it is no credential; the registry and storage are
    # reached with the projected token alone.
    refs = [source["secretRef"]["name"] for c in pod["containers"] for source in c.get("envFrom", [])
            if "secretRef" in source]  # fmt: skip
    assert refs == ["employee-attrition-entity-key"]
    assert pod["automountServiceAccountToken"] is False
    (volume,) = [v for v in pod["volumes"] if "projected" in v]
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"]["expirationSeconds"] <= 3600
    assert source["serviceAccountToken"]["audience"]
    # The inference log's compaction reads no Secret and holds no token but workload identity's.
    (compaction,) = [
        d["spec"]["jobTemplate"]["spec"]["template"]["spec"] for d in docs if d["kind"] == "CronJob"
    ]
    assert compaction["automountServiceAccountToken"] is False
    assert not [v for v in compaction["volumes"] if "projected" in v or "secret" in v]
    assert not [s for c in compaction["containers"] for s in c.get("envFrom", []) if "secretRef" in s]


class Workspace(BaseHTTPRequestHandler):
    """A local stand-in for the workspace's OAuth endpoints: discovery, and a token exchange that
    records the subject token it was given."""

    exchanged: list[dict] = []

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_port}"
        self.answer(
            {"authorization_endpoint": f"{base}/oidc/v1/authorize", "token_endpoint": f"{base}/oidc/v1/token"}
        )

    def do_POST(self) -> None:
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.exchanged.append({k: v[0] for k, v in form.items()})
        self.answer({"access_token": "databricks-access-token", "token_type": "Bearer", "expires_in": 3600})

    def answer(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_databricks_sdk_authenticates_with_the_projected_token(rendered, overlay, tmp_path, monkeypatch):
    """The rendered env (Deployment and ConfigMap) as the pod gets it, the token file at the mounted
    path moved under tmp_path, the workspace a local server (no network)."""
    from databricks.sdk.core import Config

    docs = rendered[overlay]
    (server,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {**one(docs, "ConfigMap")["data"], **{e["name"]: e["value"] for e in server["env"]}}
    (mount,) = [m for m in server["volumeMounts"] if m["name"] == "databricks-token"]
    token_path = env["DATABRICKS_OIDC_TOKEN_FILEPATH"]
    assert token_path.startswith(mount["mountPath"] + "/")
    token_file = tmp_path / token_path.removeprefix(mount["mountPath"] + "/")
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl")
    for name in [n for n in os.environ if n.startswith(("DATABRICKS_", "ARM_", "AZURE_"))]:
        monkeypatch.delenv(name)
    assert env["DATABRICKS_HOST"].startswith("https://")
    for name in ("DATABRICKS_CLIENT_ID", "DATABRICKS_AUTH_TYPE"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("DATABRICKS_OIDC_TOKEN_FILEPATH", str(token_file))
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    Workspace.exchanged = []
    with ThreadingHTTPServer(("127.0.0.1", 0), Workspace) as workspace:
        threading.Thread(target=workspace.serve_forever, daemon=True).start()
        try:
            # The workspace is the local stand-in (the rendered host is a placeholder, and no network).
            monkeypatch.setenv("DATABRICKS_HOST", f"http://127.0.0.1:{workspace.server_port}")
            monkeypatch.setenv("DATABRICKS_DISCOVERY_URL", f"http://127.0.0.1:{workspace.server_port}/oidc")
            config = Config()
            assert config.auth_type == "file-oidc"
            assert config.authenticate() == {"Authorization": "Bearer databricks-access-token"}
        finally:
            workspace.shutdown()
    (exchange,) = Workspace.exchanged
    assert exchange["subject_token"] == token_file.read_text()
    assert exchange["client_id"] == env["DATABRICKS_CLIENT_ID"]
    assert exchange["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"


def test_cds_role_applies_the_overlay_and_no_more(rendered):
    cluster = render(KUSTOMIZE / "cluster")
    roles = [d for d in cluster if d["kind"] == "Role"]
    assert {r["metadata"]["namespace"] for r in roles} == {f"attrition-{o}" for o in OVERLAYS}
    assert not [d for d in cluster if d["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    for role in roles:
        granted = {(g, r): set(rule["verbs"]) for rule in role["rules"]
                   for g in rule["apiGroups"] for r in rule["resources"]}  # fmt: skip
        assert not [k for k in granted if "*" in k or k[1] in {"pods/exec", "pods/attach", "secrets"}]
        assert all("*" not in verbs for verbs in granted.values())
        assert granted[("", "pods/portforward")] == {"create"}
        for overlay in OVERLAYS:
            for doc in rendered[overlay]:
                group = doc["apiVersion"].rpartition("/")[0]
                plural = doc["kind"].lower() + ("es" if doc["kind"].endswith("s") else "s")
                plural = plural.replace("policys", "policies")
                wanted = {"get", "create", "patch", "delete"}  # apply, and remove a failed first deployment
                assert wanted <= granted.get((group, plural), set()), (group, plural)


def test_no_pat_anywhere():
    """No Databricks personal access token, nor a variable for one, in manifests or workflows."""
    files = [*KUSTOMIZE.rglob("*.yaml"), *KUSTOMIZE.rglob("*.env"), *(ROOT / ".github").rglob("*.y*ml"),
             *(ROOT / ".github").rglob("*.sh"), ROOT / "databricks.yml"]  # fmt: skip
    for path in files:
        text = path.read_text()
        assert "DATABRICKS_TOKEN" not in text, path
        assert not re.search(r"dapi[0-9a-f]{32}", text), path  # the shape of a Databricks PAT
