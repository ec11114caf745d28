"""One registered model name: the code's default (attrition.config), databricks.yml (where the jobs
register and score it in Unity Catalog), the overlays (what the pods load and what CD resolves and
promotes) and CD (which reads it from the overlay) agree, and each check catches a disagreement."""

from __future__ import annotations

import re

import pytest
import yaml
from helpers import ROOT
from test_exposure import KUSTOMIZE, OVERLAYS, one, render

from attrition import config

pytestmark = pytest.mark.unit

BUNDLE = yaml.safe_load((ROOT / "databricks.yml").read_text())
CD = (ROOT / ".github" / "workflows" / "cd.yml").read_text()


def bundle_names(bundle: dict) -> set[str]:
    """Every model name the bundle's jobs are given, with its variables' defaults substituted."""
    defaults = {name: spec["default"] for name, spec in bundle["variables"].items()}
    text = yaml.safe_dump(bundle["resources"])
    given = re.findall(r"--model-name\n\s*- (\S+)", text) + re.findall(r"ATTRITION_MODEL_NAME: (\S+)", text)
    return {re.sub(r"\$\{var\.(\w+)\}", lambda m: defaults[m.group(1)], name) for name in given}


def unity_catalog_name(bundle: dict) -> str:
    defaults = {name: spec["default"] for name, spec in bundle["variables"].items()}
    return f"{defaults['catalog']}.{defaults['schema']}.{defaults['model_name']}"


def test_the_code_and_the_bundle_agree():
    assert BUNDLE["variables"]["model_name"]["default"] == config.DEFAULT_MODEL_NAME
    assert bundle_names(BUNDLE) == {unity_catalog_name(BUNDLE)}
    # A Unity Catalog name is three identifiers.
    assert re.fullmatch(r"\w+\.\w+\.\w+", unity_catalog_name(BUNDLE))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlays_load_that_model(overlay):
    settings = one(render(KUSTOMIZE / "overlays" / overlay), "ConfigMap")["data"]
    assert settings["ATTRITION_MODEL_NAME"] == unity_catalog_name(BUNDLE)


def test_cd_takes_the_name_from_the_overlay():
    """CD resolves and promotes the model the overlay names, and spells no name of its own."""
    assert CD.count("sed -n 's/^ *ATTRITION_MODEL_NAME: *//p'") == 1
    assert config.DEFAULT_MODEL_NAME not in CD and "employee-attrition@" not in CD
    assert "models:/$name/$version" in CD


def test_a_disagreement_is_caught():
    renamed = yaml.safe_load(yaml.safe_dump(BUNDLE))
    job = renamed["resources"]["jobs"]["attrition_train"]
    job["tasks"][0]["spark_python_task"]["parameters"][1] = "${var.catalog}.${var.schema}.employee-attrition"
    assert len(bundle_names(renamed)) == 2
    renamed = yaml.safe_load(yaml.safe_dump(BUNDLE))
    renamed["variables"]["model_name"]["default"] = "attrition"
    assert renamed["variables"]["model_name"]["default"] != config.DEFAULT_MODEL_NAME
    assert unity_catalog_name(renamed) != unity_catalog_name(BUNDLE)
