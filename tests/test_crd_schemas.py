"""Every object the overlays and the cluster set-up render validates strictly against a pinned schema,
offline: Kubernetes' own kinds against kubernetes-validate's bundled schemas, the CRD kinds (Gateway
API, cert-manager, Istio security, Prometheus Operator) against the schemas of the @kubernetes-models
npm packages, generated from the released CRDs (tests/crd-schemas, installed by make): types, enums,
patterns and required fields, and no field the schema lacks. Each validator rejects a broken object."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from helpers import ROOT

pytestmark = pytest.mark.deploy

BIN = Path(sys.executable).parent
KUSTOMIZE = ROOT / "kustomize"
TREES = ("overlays/staging", "overlays/production", "cluster")
VALIDATOR = ROOT / "tests" / "crd-schemas" / "validate.mjs"
#: API groups that are CRDs: validated against the npm packages' schemas.
CRD_GROUPS = {"gateway.networking.k8s.io", "cert-manager.io", "security.istio.io", "monitoring.coreos.com"}
#: The oldest Kubernetes minor we deploy to on AKS.
KUBERNETES_VERSION = "1.31.0"


def render(tree: str) -> list[dict]:
    result = subprocess.run([str(BIN / "kubectl"), "kustomize", str(KUSTOMIZE / tree)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def is_crd(doc: dict) -> bool:
    return doc["apiVersion"].split("/")[0] in CRD_GROUPS


def crd_problems(docs: list[dict]) -> list[list[str]]:
    """One list of problems per document, from the npm packages' schemas (Node.js)."""
    node = shutil.which("node")
    assert node, "Node.js is missing: make install sets it up (tests/crd-schemas)"
    result = subprocess.run([node, str(VALIDATOR)], input=json.dumps(docs), capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {tree: render(tree) for tree in TREES}


@pytest.mark.parametrize("tree", TREES)
def test_every_object_validates_strictly(rendered, tree):
    docs = rendered[tree]
    crds = [d for d in docs if is_crd(d)]
    problems = crd_problems(crds)
    assert {f"{d['kind']}/{d['metadata']['name']}": p for d, p in zip(crds, problems, strict=True) if p} == {}
    for doc in docs:
        if not is_crd(doc):
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_production_uses_every_crd_kind(rendered):
    kinds = {d["kind"] for d in rendered["overlays/production"] if is_crd(d)}
    assert kinds == {"Gateway", "HTTPRoute", "RequestAuthentication", "AuthorizationPolicy",
                     "ServiceMonitor", "PrometheusRule"}  # fmt: skip


def test_the_schemas_reject_broken_objects(rendered):
    docs = {d["kind"]: d for d in rendered["overlays/production"] if is_crd(d)}

    def broken(kind: str, change) -> dict:
        doc = copy.deepcopy(docs[kind])
        change(doc)
        return doc

    cases = {
        "/spec/hostnamez: unknown field": broken("HTTPRoute", lambda d: d["spec"].update(hostnamez=["x"])),
        "/spec/rules/0/matches/0/path/type: enum": broken(
            "HTTPRoute", lambda d: d["spec"]["rules"][0]["matches"][0]["path"].update(type="Prefix")
        ),
        "/spec/listeners/1/tls/mode: enum": broken(
            "Gateway", lambda d: d["spec"]["listeners"][1]["tls"].update(mode="Terminated")
        ),
        "/spec/listeners/0/tlz: unknown field": broken(
            "Gateway", lambda d: d["spec"]["listeners"][0].update(tlz={})
        ),
        "/spec/actions: unknown field": broken(
            "AuthorizationPolicy", lambda d: d["spec"].update(actions="DENY")
        ),
        "/spec/action: enum": broken("AuthorizationPolicy", lambda d: d["spec"].update(action="BLOCK")),
        "/spec/jwtRules/0/audiences: type": broken(
            "RequestAuthentication", lambda d: d["spec"]["jwtRules"][0].update(audiences="api://x")
        ),
        "/metadata/labelz: unknown field": broken(
            "ServiceMonitor", lambda d: d["metadata"].update(labelz={})
        ),
        "/spec/groups/0/rules/0/for: pattern": broken(
            "PrometheusRule", lambda d: d["spec"]["groups"][0]["rules"][0].update({"for": "30 minutes"})
        ),
    }
    found = crd_problems(list(cases.values()))
    for (expected, _), problems in zip(cases.items(), found, strict=True):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert crd_problems([{"apiVersion": "example.com/v1", "kind": "Widget"}]) == [
        ["no schema for example.com/v1 Widget"]
    ]
