"""The workflows install only what uv.lock and hashed requirements files pin, and never run project
code beside credentials: every install is hashed; a job that may mint an OIDC token (`id-token: write`)
runs no Python, make or uv; jobs that deploy (an `environment`) wait for the gate that admits main
only; the uv that the Makefile and workflows install is pyproject.toml's. Each check rejects a broken
workflow too."""

from __future__ import annotations

import copy
import re
import tomllib

import pytest
import yaml
from helpers import ROOT

pytestmark = pytest.mark.deploy

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
#: Commands that run the project's code or install packages.
PROJECT_CODE = re.compile(
    r"(^|[;&|(]|\$\()\s*(make|python3?|pip|uv|uvx|attrition|pytest)\b|\.venv/", re.MULTILINE
)


def load(path) -> dict:
    return yaml.safe_load(path.read_text())


def runs(job: dict) -> list[str]:
    return [step["run"] for step in job.get("steps", []) if "run" in step]


def check_workflow(workflow: dict) -> list[str]:
    problems = []
    for name, job in workflow["jobs"].items():
        for script in runs(job):
            for line in script.splitlines():
                if re.search(r"\bpip\b.*\binstall\b", line) and "--require-hashes" not in line:
                    problems.append(f"{name}: pip install without --require-hashes: {line.strip()}")
                if re.search(r"\buv\b.*\b(sync|pip install)\b", line) and "--frozen" not in line:
                    problems.append(f"{name}: uv install without the lock: {line.strip()}")
        if job.get("permissions", {}).get("id-token") == "write":
            code = [s for s in runs(job) if PROJECT_CODE.search(re.sub(r"#.*", "", s))]
            if code:
                problems.append(f"{name}: holds id-token and runs project code: {code[0].splitlines()[0]}")
        if "environment" in job and "gate" not in job.get("needs", []):
            problems.append(f"{name}: deploys to {job['environment']} without the gate (main only)")
    return problems


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_install_from_the_lock_and_keep_code_from_credentials(path):
    assert check_workflow(load(path)) == []


def test_the_checks_reject_broken_workflows():
    good = load(ROOT / ".github" / "workflows" / "cd.yml")
    assert check_workflow(good) == []
    staging = good["jobs"]["staging"]
    cases = {
        "pip install without --require-hashes": {"run": "python -m pip install ."},
        "uv install without the lock": {"run": "uv sync --extra dev"},
        "holds id-token and runs project code": {"run": "make install-serve"},
    }
    for expected, step in cases.items():
        broken = copy.deepcopy(good)
        broken["jobs"]["staging"]["steps"].append(step)
        assert any(expected in p for p in check_workflow(broken)), expected
    broken = copy.deepcopy(good)
    broken["jobs"]["staging"] = {**staging, "needs": ["build"]}
    assert any("without the gate" in p for p in check_workflow(broken))


def test_the_uv_installed_is_the_locks():
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["required-version"]
    pins = re.findall(r"^uv==(\S+)", (ROOT / "tools" / "uv-requirements.txt").read_text(), re.MULTILINE)
    assert [f"=={pin}" for pin in pins] == [required]
    audit = re.findall(r"^uv==(\S+)", (ROOT / "tools" / "audit-requirements.txt").read_text(), re.MULTILINE)
    assert [f"=={pin}" for pin in audit] == [required]
    makefile = (ROOT / "Makefile").read_text()
    assert (
        "--require-hashes --no-deps --upgrade \\\n\t\t--target .uv -r tools/uv-requirements.txt" in makefile
    )
