"""Offline: the podman flags read from the rendered production overlay; CI builds the images from the
same Dockerfile and build args as ``make image``, with BuildKit's provenance and SBOM attestations, runs
the container test on them and hands their digests on; CD pushes that digest unchanged (no build), signs
it, attests its SBOM and verifies both before each deployment; Dependabot watches the base, which the
Dockerfile pins by digest."""

from __future__ import annotations

import copy
import json
import os
import re

import pytest
import yaml
from helpers import ROOT

from attrition_tools import image
from attrition_tools.container import production_deployment, production_job

WORKFLOWS = ROOT / ".github" / "workflows"
DIGEST_PIN = re.compile(r"^FROM \S+:\S+@sha256:[0-9a-f]{64} AS public-base$", re.MULTILINE)


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def _uses(step: dict, action: str) -> bool:
    return step.get("uses", "").split("@")[0] == action


def _script(job: dict) -> str:
    return "\n".join(s.get("run", "") for s in job.get("steps", []))


def check_ci(ci: dict) -> list[str]:
    problems = []
    job = ci["jobs"].get("image", {"steps": []})
    builds = [s.get("with", {}) for s in job["steps"] if _uses(s, "docker/build-push-action")]
    dockerfile = str(image.DOCKERFILE.relative_to(ROOT))
    if sorted(b.get("build-args") for b in builds) != sorted(
        f"TRUST_EXTRAS={v}" for v in image.VARIANTS.values()
    ):
        problems.append(f"build args {[b.get('build-args') for b in builds]} are not make image's")
    for build in builds:
        if build.get("file") != dockerfile or build.get("context") != ".":
            problems.append(f"builds {build.get('file')} in {build.get('context')}, not {dockerfile} in .")
        if build.get("provenance") != "mode=max" or build.get("sbom") is not True:
            problems.append("a build without provenance and SBOM attestations")
    outputs = {b.get("outputs") for b in builds}
    if outputs != {f"type=oci,dest=build/image/{v}.oci.tar" for v in image.VARIANTS}:
        problems.append(f"outputs {outputs}: not one OCI archive per variant")
    script = _script(job)
    for needed in ("digests.txt", "attrition_tools.image --load build/image", "pytest -m container"):
        if needed not in script:
            problems.append(f"the image job does not run {needed}")
    uploads = [s.get("with", {}) for s in job["steps"] if _uses(s, "actions/upload-artifact")]
    if not any(u.get("name") == "images" and "digests.txt" in u.get("path", "") for u in uploads):
        problems.append("the archives and digests are not uploaded as the artifact images")
    return problems


def check_cd(cd: dict) -> list[str]:
    problems = []
    text = json.dumps(cd)
    if re.search(r"acr build|docker build|build-push-action|buildah|podman build", text):
        problems.append("CD builds an image")
    build = cd["jobs"]["build"]
    downloads = [s.get("with", {}) for s in build["steps"] if _uses(s, "actions/download-artifact")]
    if not any(d.get("name") == "images" and "ci-run" in d.get("run-id", "") for d in downloads):
        problems.append("CD does not take CI's artifact of the commit's run")
    script = _script(build)
    for needed in (
        "--preserve-digests",
        "digests.txt",
        '"$digest" != "$expected"',
        "cosign sign",
        "cosign attest",
    ):
        if needed not in script:
            problems.append(f"the promotion does not {needed}")
    for name in ("staging", "production"):
        steps = cd["jobs"][name]["steps"]
        verify = [i for i, s in enumerate(steps) if "cosign verify-attestation" in s.get("run", "")]
        deploy = [i for i, s in enumerate(steps) if "kubectl apply -k ." in s.get("run", "")]
        if not verify or not deploy or verify[0] > deploy[0]:
            problems.append(f"{name} deploys without verifying the signature and SBOM attestation first")
        if "needs.build.outputs.image" not in json.dumps(steps):
            problems.append(f"{name} deploys another image than the one promoted")
    return problems


def test_ci_builds_what_make_image_builds_and_tests_it():
    assert check_ci(load("ci.yml")) == []


def test_cd_deploys_only_the_signed_digest_ci_built():
    assert check_cd(load("cd.yml")) == []


def test_image_checks_reject_careless_workflows():
    ci, cd = load("ci.yml"), load("cd.yml")

    def build_step(w: dict) -> dict:
        return next(s for s in w["jobs"]["image"]["steps"] if _uses(s, "docker/build-push-action"))["with"]

    ci_cases = {
        "build args": lambda w: build_step(w).update({"build-args": "TRUST_EXTRAS=x"}),
        "provenance": lambda w: build_step(w).pop("sbom"),
        "pytest -m container": lambda w: w["jobs"]["image"]["steps"].pop(-2),
    }
    for expected, change in ci_cases.items():
        broken = copy.deepcopy(ci)
        change(broken)
        assert any(expected in p for p in check_ci(broken)), expected

    def verify_after_deploy(w: dict) -> None:
        steps = w["jobs"]["staging"]["steps"]
        (verify,) = [s for s in steps if "cosign verify" in s.get("run", "")]
        steps.remove(verify)
        steps.append(verify)

    cd_cases = {
        "builds an image": lambda w: w["jobs"]["build"]["steps"].append({"run": "az acr build ."}),
        "cosign sign": lambda w: w["jobs"]["build"]["steps"][-1].update(run="echo unsigned"),
        "without verifying": verify_after_deploy,
    }
    for expected, change in cd_cases.items():
        broken = copy.deepcopy(cd)
        change(broken)
        assert any(expected in p for p in check_cd(broken)), expected


def test_dependabot_watches_the_base_pinned_by_digest():
    assert DIGEST_PIN.search(image.DOCKERFILE.read_text())
    updates = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())["updates"]
    assert {"package-ecosystem": "docker", "directory": "/runtime"}.items() <= next(
        u for u in updates if u["package-ecosystem"] == "docker"
    ).items()


def test_podman_flags_come_from_the_rendered_production_overlay():
    deployment = production_deployment()
    flags = " ".join(deployment.flags)
    for expected in (
        "--user 10001:10001",
        "--group-add 10001",
        "--read-only --read-only-tmpfs=false",
        "--security-opt no-new-privileges",
        "--cap-drop ALL",
        "--tmpfs /tmp:rw,exec,nosuid,nodev,mode=1777,size=2g",
        "--tmpfs /run/attrition:rw,exec,nosuid,nodev,mode=1777,size=64m",
        "--cpus 2 --memory 3g",
    ):
        assert expected in flags, (expected, flags)
    assert deployment.env["ATTRITION_RUNTIME_TMP"] == "/run/attrition"
    assert deployment.env["ATTRITION_MODEL_ALIAS"] == "production"
    assert deployment.ports == {"http": 8080, "grpc": 8081, "metrics": 8082}
    assert deployment.grace_s == 45 and deployment.readiness_path == "/v2/models/employee-attrition/ready"
    # The inference log compaction CronJob: the same hardening, its own limits (millicores as podman's
    # decimal CPUs), its command after the image's tini.
    job = production_job()
    flags = " ".join(job.flags)
    for expected in (
        "--user 10001:10001",
        "--read-only --read-only-tmpfs=false",
        "--cap-drop ALL",
        "--tmpfs /tmp:rw,exec,nosuid,nodev,mode=1777,size=1g",
        "--cpus 0.5 --memory 1g",
    ):
        assert expected in flags, (expected, flags)
    assert job.command == ["/usr/bin/tini", "--", "attrition", "log", "compact"]
    assert job.env["ATTRITION_INFERENCE_LOG"] == deployment.env["ATTRITION_INFERENCE_LOG"]


def test_podman_flags_refuse_what_they_cannot_model(tmp_path):
    """A volume other than an emptyDir or a projected token (or another seccomp profile) is refused,
    never run otherwise."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    patch = [
        {"op": "add", "path": "/spec/template/spec/volumes/0",
         "value": {"name": "host", "hostPath": {"path": "/"}}},
        {"op": "add", "path": "/spec/template/spec/containers/0/volumeMounts/0",
         "value": {"name": "host", "mountPath": "/host"}},
    ]  # fmt: skip
    kustomization = {
        "resources": [os.path.relpath(image.PRODUCTION_OVERLAY, overlay)],
        "patches": [{"target": {"kind": "Deployment"}, "patch": json.dumps(patch)}],
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    with pytest.raises(ValueError, match="neither an emptyDir nor a token"):
        production_deployment(overlay)
