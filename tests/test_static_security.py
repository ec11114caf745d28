"""Static security analysis of what ships, offline.

- zizmor (offline) on .github (workflows and the Dependabot config): no finding above "low". The
  one in-file ignore is the workflow_run trigger of CD, whose gate job is checked here too.
- checkov on both rendered overlays and on runtime/Dockerfile: no failed check, and every skipped
  check names its reason in the source (Kubernetes: `checkov.io/skipN: CKV_...=reason` annotations,
  which survive rendering; Dockerfile: `# checkov:skip=CKV_...: reason` comments).
- The workflows' own rules: actions pinned to commit SHAs with their version in a comment, no
  default permissions, OIDC and secrets only in jobs bound to an environment, no persisted checkout
  credentials, and CD's order: gate on CI, deploy by digest and model version, smoke test, roll back
  on failure, move the `production` alias last.

zizmor is a dev dependency (a binary wheel beside this interpreter). checkov conflicts with the
project's pins, so it lives in a virtualenv of its own, built from tools/security-requirements.txt:
$ATTRITION_SECURITY_VENV, default .venv-security. Each check is also shown to reject a broken input."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

pytestmark = pytest.mark.deploy

BIN = Path(sys.executable).parent
SECURITY_VENV = Path(os.environ.get("ATTRITION_SECURITY_VENV", ROOT / ".venv-security"))
CHECKOV = SECURITY_VENV / "bin" / "checkov"
WORKFLOWS = ROOT / ".github" / "workflows"
DOCKERFILE = ROOT / "runtime" / "Dockerfile"
OVERLAYS = ("staging", "production")
#: The only zizmor finding above "low" that is ignored in the file (with its reason there).
IGNORED = {("dangerous-triggers", ".github/workflows/cd.yml")}
PINNED = re.compile(r"^\s*(?:- )?uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40})  # v\d+\.\d+\.\d+$")


def run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs)


# --- zizmor ------------------------------------------------------------------------------------------


def zizmor(*args: str | Path, cwd: Path = ROOT) -> tuple[int, list[dict]]:
    """Findings of medium severity and above; offline, no configuration file (the ignores are in the
    workflow files), and a file that does not parse is an error rather than skipped."""
    result = run(
        BIN / "zizmor", "--offline", "--no-config", "--strict-collection", "--format", "json",
        "--min-severity", "medium", *args, cwd=cwd,
    )  # fmt: skip
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout)


def where(finding: dict) -> str:
    return finding["locations"][0]["symbolic"]["key"]["Local"]["verbatim_path"]


def test_zizmor_finds_nothing_above_low():
    code, findings = zizmor(".github")
    assert (code, findings) == (0, []), [(f["ident"], where(f)) for f in findings]
    # Without the in-file ignores, only the one documented exception shows up.
    _, findings = zizmor("--no-ignores", ".github")
    assert {(f["ident"], where(f)) for f in findings} == IGNORED
    (line,) = [line for line in (WORKFLOWS / "cd.yml").read_text().splitlines() if "zizmor: ignore" in line]
    assert re.search(r"zizmor: ignore\[dangerous-triggers\] \w+", line), "an ignore needs its reason"


def test_zizmor_rejects_a_careless_workflow(tmp_path):
    careless = tmp_path / "careless.yml"
    careless.write_text(
        "on: pull_request_target\n"
        "permissions: write-all\n"
        "jobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    code, findings = zizmor(careless, cwd=tmp_path)
    assert code != 0
    assert {"unpinned-uses", "artipacked", "template-injection", "dangerous-triggers"} <= {
        f["ident"] for f in findings
    }


# --- checkov -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov() -> Path:
    if not CHECKOV.exists():
        message = f"no checkov at {CHECKOV}: create that virtualenv from tools/security-requirements.txt"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHECKOV


def scan(checkov: Path, framework: str, *files: Path, cwd: Path) -> dict:
    """checkov's JSON report; nothing downloaded (no Prisma Cloud mapping, guidelines or policies)."""
    result = run(
        checkov, "--framework", framework, "--skip-download", "--output", "json",
        *[arg for f in files for arg in ("--file", f)],
        cwd=cwd, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr  # 1: failed checks
    report = json.loads(result.stdout)
    assert report.get("check_type") == framework, report  # a report with no resources has no type
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["resource_count"] > 0
    return report


def unexplained(report: dict) -> list[str]:
    """Failed checks, and skipped checks whose reason is missing."""
    results = report["results"]
    problems = [f"{c['check_id']} failed on {c['resource']}" for c in results["failed_checks"]]
    for c in results["skipped_checks"]:
        reason = (c["check_result"].get("suppress_comment") or "").strip()
        if len(reason) < 10 or reason == "No comment provided":
            problems.append(f"{c['check_id']} skipped on {c['resource']} without a reason")
    return problems


@pytest.fixture(scope="module")
def rendered_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("rendered")
    files = []
    for name in OVERLAYS:
        result = run(BIN / "kubectl", "kustomize", ROOT / "kustomize" / "overlays" / name)
        assert result.returncode == 0, result.stderr
        files.append(folder / f"{name}.yaml")
        files[-1].write_text(result.stdout)
    return files


def test_checkov_passes_the_rendered_overlays(checkov, rendered_files):
    report = scan(checkov, "kubernetes", *rendered_files, cwd=rendered_files[0].parent)
    assert unexplained(report) == []
    scanned = {c["file_abs_path"] for c in report["results"]["passed_checks"]}
    assert scanned == {str(f) for f in rendered_files}
    # Every workload is scanned: the server and the inference log's daily compaction.
    kinds = {c["resource"].split(".")[0] for c in report["results"]["passed_checks"]}
    assert {"Deployment", "CronJob"} <= kinds


def test_checkov_passes_the_dockerfile(checkov, tmp_path):
    report = scan(checkov, "dockerfile", DOCKERFILE, cwd=tmp_path)
    assert unexplained(report) == []


def test_checkov_rejects_careless_manifests_and_unexplained_skips(checkov, tmp_path):
    careless = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "careless", "namespace": "default",
                     "annotations": {"checkov.io/skip1": "CKV_K8S_43"}},
        "spec": {
            "selector": {"matchLabels": {"app": "careless"}},
            "template": {
                "metadata": {"labels": {"app": "careless"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:latest",
                                         "securityContext": {"privileged": True}}]},
            },
        },
    }  # fmt: skip
    (tmp_path / "careless.yaml").write_text(yaml.safe_dump(careless))
    problems = unexplained(scan(checkov, "kubernetes", tmp_path / "careless.yaml", cwd=tmp_path))
    assert any("CKV_K8S_16 failed" in p for p in problems)  # privileged
    assert any("CKV_K8S_43 skipped" in p and "without a reason" in p for p in problems)
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:latest\n# checkov:skip=CKV_DOCKER_2\nRUN pip install requests\n")
    problems = unexplained(scan(checkov, "dockerfile", dockerfile, cwd=tmp_path))
    assert any("CKV_DOCKER_7 failed" in p for p in problems)  # latest tag
    assert any("CKV_DOCKER_3 failed" in p for p in problems)  # no USER
    assert any("CKV_DOCKER_2 skipped" in p for p in problems)


# --- The workflows' own rules ------------------------------------------------------------------------


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on:` as True
    return workflow


def check_pins(text: str) -> list[str]:
    """Every action by commit SHA, its release in a comment (Dependabot updates both)."""
    problems = []
    for line in text.splitlines():
        if re.match(r"^\s*(?:- )?uses:", line) and not PINNED.match(line):
            problems.append(f"not pinned to a SHA with its version: {line.strip()}")
    return problems


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job.get("steps", []) if s.get("uses", "").split("@")[0] == action]


def check_jobs(workflow: dict) -> list[str]:
    """No default permissions; OIDC only where Azure is logged in to; Azure and secrets only in jobs
    bound to an environment; checkouts keep no credentials."""
    problems = []
    if workflow.get("permissions") != {}:
        problems.append(f"workflow permissions {workflow.get('permissions')}, not {{}}")
    if any("secrets." in str(v) for v in workflow.get("env", {}).values()):
        problems.append("secrets in the workflow's env")
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        if not isinstance(permissions, dict):
            problems.append(f"{name}: no permissions of its own")
            continue
        if permissions.get("id-token") == "write" and not steps_using(job, "azure/login"):
            problems.append(f"{name}: id-token: write without an Azure login")
        if any(v == "write" for k, v in permissions.items() if k != "id-token"):
            problems.append(f"{name}: writes {[k for k, v in permissions.items() if v == 'write']}")
        uses_secrets = "secrets." in json.dumps(job)
        if (uses_secrets or steps_using(job, "azure/login")) and not job.get("environment"):
            problems.append(f"{name}: secrets or Azure outside an environment")
        if "secrets." in json.dumps(job.get("env", {})):
            problems.append(f"{name}: secrets in the job's env, not a step's")
        for step in steps_using(job, "actions/checkout"):
            if step.get("with", {}).get("persist-credentials") is not False:
                problems.append(f"{name}: checkout persists credentials")
    return problems


def step_index(job: dict, needle: str) -> int:
    (index,) = [i for i, s in enumerate(job["steps"]) if needle in s.get("run", "")]
    return index


def check_cd(cd: dict, ci_name: str) -> list[str]:
    """CD runs after CI passed on main, deploys by digest and model version, rolls back on failure,
    and moves the production alias only after production's rollout and smoke test."""
    problems = []
    trigger = cd["on"]
    run_trigger = trigger.get("workflow_run") or {}
    if set(trigger) != {"workflow_run", "workflow_dispatch"}:
        problems.append(f"triggers {sorted(trigger)}")
    if (run_trigger.get("workflows"), run_trigger.get("types"), run_trigger.get("branches")) != (
        [ci_name],
        ["completed"],
        ["main"],
    ):
        problems.append(f"workflow_run {run_trigger}")
    jobs = cd["jobs"]
    gate = " ".join(jobs.get("gate", {}).get("if", "").split())
    for condition in (
        "github.event.workflow_run.conclusion == 'success'",
        "github.event.workflow_run.event == 'push'",
        "github.event.workflow_run.head_branch == 'main'",
        "github.event.workflow_run.head_repository.full_name == github.repository",
        "github.ref == 'refs/heads/main'",
    ):
        if condition not in gate:
            problems.append(f"the gate does not check {condition}")
    for name, job in jobs.items():
        needs = job.get("needs", [])
        if name != "gate" and "gate" not in ([needs] if isinstance(needs, str) else needs):
            problems.append(f"{name} does not wait for the gate")
        for step in steps_using(job, "actions/checkout"):
            if step.get("with", {}).get("ref") != "${{ needs.gate.outputs.sha }}":
                problems.append(f"{name}: checks out something else than the commit CI passed")
    if "@$digest" not in json.dumps(jobs.get("build", {})):
        problems.append("the image is not by digest")
    for name in OVERLAYS:
        job = jobs.get(name, {"steps": []})
        try:
            deploy, smoke = step_index(job, "kubectl apply -k ."), step_index(job, "/infer")
            rollback = step_index(job, "roll-back.sh")
        except ValueError:
            problems.append(f"{name}: no deploy, smoke test or rollback step")
            continue
        if "ATTRITION_MODEL_URI" not in job["steps"][deploy]["run"]:
            problems.append(f"{name}: the model version is not pinned")
        if not deploy < smoke < rollback or "failure()" not in job["steps"][rollback].get("if", ""):
            problems.append(f"{name}: no rollback after a failed rollout or smoke test")
    # The alias moves only after the smoke test passed (no `if`: it runs only when every step before
    # it succeeded), and a failed move is rolled back too (the rollback step comes after it).
    production = jobs.get("production", {"steps": []})
    try:
        promote = step_index(production, "/aliases/production")
        smoke = step_index(production, "/infer")
        if (
            not smoke < promote < step_index(production, "roll-back.sh")
            or "if" in production["steps"][promote]
        ):
            problems.append("the production alias moves before the release succeeded, or unguarded")
    except ValueError:
        problems.append("production does not move the alias")
    return problems


def test_workflows_pin_actions_and_grant_least_privilege():
    for name in ("ci.yml", "cd.yml"):
        assert check_pins((WORKFLOWS / name).read_text()) == [], name
        assert check_jobs(load(name)) == [], name
    assert check_cd(load("cd.yml"), load("ci.yml")["name"]) == []


def test_workflow_checks_reject_careless_workflows():
    ci, cd = load("ci.yml"), load("cd.yml")
    assert check_pins("      - uses: actions/checkout@v4\n")
    assert check_pins("      - uses: actions/checkout@" + "a" * 40 + "\n")  # no version comment
    cases = {
        "not {}": lambda w: w.update(permissions={"contents": "read", "id-token": "write"}),
        "id-token: write without": lambda w: w["jobs"]["gate"]["permissions"].update({"id-token": "write"}),
        "outside an environment": lambda w: w["jobs"]["build"].pop("environment"),
        "in the job's env": lambda w: w["jobs"]["production"].update(
            env={"DATABRICKS_TOKEN": "${{ secrets.DATABRICKS_TOKEN }}"}
        ),
        "persists credentials": lambda w: w["jobs"]["staging"]["steps"][0]["with"].pop("persist-credentials"),
        "writes": lambda w: w["jobs"]["gate"]["permissions"].update(contents="write"),
    }
    for expected, change in cases.items():
        broken = copy.deepcopy(cd)
        change(broken)
        assert any(expected in p for p in check_jobs(broken)), expected

    def promote_first(w: dict) -> None:
        steps = w["jobs"]["production"]["steps"]
        steps.insert(0, steps.pop(step_index(w["jobs"]["production"], "/aliases/production")))

    cd_cases = {
        "triggers": lambda w: w["on"].update(push={"branches": ["main"]}),
        "workflow_run": lambda w: w["on"]["workflow_run"].update(branches=["*"]),
        "head_repository": lambda w: w["jobs"]["gate"].update({"if": "always()"}),
        "does not wait for the gate": lambda w: w["jobs"]["staging"].update(needs=["build"]),
        "not by digest": lambda w: w["jobs"]["build"]["steps"][-1].update(run="echo image=x:tag"),
        "no rollback": lambda w: w["jobs"]["staging"]["steps"][
            step_index(w["jobs"]["staging"], "roll-back.sh")
        ].update({"if": "always()"}),
        "moves before": promote_first,
    }
    for expected, change in cd_cases.items():
        broken = copy.deepcopy(cd)
        change(broken)
        assert any(expected in p for p in check_cd(broken, ci["name"])), expected


def test_dependabot_keeps_actions_and_dependencies_current():
    config = ROOT / ".github" / "dependabot.yml"
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.dependabot", config)
    assert result.returncode == 0, result.stdout + result.stderr
    updates = {u["package-ecosystem"]: u for u in yaml.safe_load(config.read_text())["updates"]}
    assert {"github-actions", "uv", "pip"} <= set(updates)
    assert updates["pip"]["directory"] == "/tools"  # checkov's hashed requirements
    assert all(u.get("cooldown", {}).get("default-days", 0) >= 1 for u in updates.values())


def test_security_requirements_are_pinned_with_hashes():
    text = (ROOT / "tools" / "security-requirements.txt").read_text()
    assert re.search(r"^checkov==\d+\.\d+\.\d+ \\$", text, re.MULTILINE)
    # Each requirement is name==version followed by its hashes (pip then installs with --require-hashes).
    blocks = re.split(r"^(?=[A-Za-z0-9_.-]+==)", text, flags=re.MULTILINE)[1:]
    assert len(blocks) > 20
    for block in blocks:
        assert re.match(r"[A-Za-z0-9_.-]+==\S+ \\\n\s+--hash=sha256:[0-9a-f]{64}", block), block[:80]
