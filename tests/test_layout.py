"""The tree shows the design and stays that way: short functions, a small top level of the model
package with the rest in subpackages that each state their public API, every subpackage shipped in
the wheel, and trust backends named only by their registry."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
from helpers import ROOT

from attrition import backends

pytestmark = pytest.mark.unit

PACKAGE = ROOT / "models" / "attrition"
#: Where the rule on function length holds (what ships and what the tools run).
CODE = ("models", "runtime", "tools")
MAX_FUNCTION_LINES = 60
MAX_TOP_LEVEL_MODULES = 8


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if "tests" not in p.parts)


def test_no_function_is_over_60_lines():
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in _python_files(*CODE)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_the_model_package_top_level_is_small_and_its_subpackages_state_their_api():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    subpackages = [p.parent for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE]
    assert {p.name for p in subpackages} >= {"contract", "training", "serving", "backends", "bundle", "batch"}
    without_all = [
        str(p.relative_to(PACKAGE))
        for p in subpackages
        if not any(
            isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets)
            for node in ast.parse((p / "__init__.py").read_text()).body
        )
    ]
    assert without_all == []


def test_every_subpackage_is_in_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(("attrition", *p.parent.relative_to(PACKAGE).parts)) for p in PACKAGE.rglob("__init__.py")
    } | {"attrition_runtime"}
    assert listed == found


def test_trust_backends_are_named_only_by_their_registry():
    """No comparison with a backend's name outside attrition.backends (the registry maps names)."""
    names = set(backends.names())
    assert names == {"alibi", "open"}
    compared = []
    for path in _python_files(*CODE):
        if path.is_relative_to(PACKAGE / "backends"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(isinstance(o, ast.Constant) and o.value in names for o in operands):
                    compared.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert compared == []
