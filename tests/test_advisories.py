"""The web stack in uv.lock is free of the advisories listed in tools/advisories.toml: every locked
version of a listed package is at or above the advisory's first fixed version. The live databases are
pip-audit's job in CI; this list is the part that must never regress, checked offline."""

from __future__ import annotations

import tomllib

import pytest
from helpers import ROOT
from packaging.version import Version

pytestmark = pytest.mark.unit

ADVISORIES = tomllib.loads((ROOT / "tools" / "advisories.toml").read_text())["advisory"]
LOCK = ROOT / "uv.lock"


def locked_versions(lock_text: str) -> dict[str, list[Version]]:
    """Every version of every package a uv lock holds (a package may be locked more than once)."""
    versions: dict[str, list[Version]] = {}
    for package in tomllib.loads(lock_text)["package"]:
        if "version" in package:
            versions.setdefault(package["name"], []).append(Version(package["version"]))
    return versions


def vulnerable(lock_text: str, advisories: list[dict]) -> list[str]:
    """The advisories a lock is exposed to, as ``<id>: <package> <version> < <fixed>``."""
    locked = locked_versions(lock_text)
    return [
        f"{a['id']}: {a['package']} {version} < {a['fixed']}"
        for a in advisories
        for version in locked.get(a["package"], [])
        if version < Version(a["fixed"])
    ]


def test_the_list_is_well_formed():
    assert ADVISORIES
    for advisory in ADVISORIES:
        assert set(advisory) == {"id", "package", "fixed", "summary"}, advisory
        assert advisory["id"].startswith(("CVE-", "GHSA-", "PYSEC-")), advisory
        Version(advisory["fixed"])


def test_the_lock_holds_no_listed_vulnerable_version():
    text = LOCK.read_text()
    assert vulnerable(text, ADVISORIES) == []
    # The packages the list names are the ones the server runs on: all of them are in the lock.
    assert {a["package"] for a in ADVISORIES} <= set(locked_versions(text))


@pytest.mark.parametrize(("package", "version"), [("starlette", "0.46.2"), ("h11", "0.14.0")])
def test_a_lock_below_a_floor_fails(package, version):
    """The lock as it was before the override (starlette 0.46.2), and an old h11, are caught."""
    lock = f'version = 1\n\n[[package]]\nname = "{package}"\nversion = "{version}"\n'
    problems = vulnerable(lock, ADVISORIES)
    assert problems and all(f"{package} {version} <" in p for p in problems)
