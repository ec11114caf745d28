"""Model versions registered before the package was split into subpackages still load and serve: a
bundle logged by that code (tests/assets, open backend, with 40 held-out rows and what it answered
for them) gives the same answers when loaded by this code."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from helpers import ROOT

import attrition.bundle

pytestmark = pytest.mark.unit

ASSET = ROOT / "tests" / "assets" / "bundle-flat-package.tar.xz"


@pytest.fixture(scope="module")
def legacy(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("legacy")
    with tarfile.open(ASSET) as archive:
        archive.extractall(folder, filter="data")
    return folder


def test_a_bundle_logged_by_the_flat_package_gives_the_same_answers(legacy):
    model = mlflow.pyfunc.load_model(str(legacy / "model"))
    # Loaded by this checkout's package (the bundle's pickle names attrition.bundle.AttritionModel),
    # not by the copy of the old code inside the bundle.
    python_model = model.unwrap_python_model()
    assert type(python_model) is attrition.bundle.AttritionModel
    assert Path(attrition.bundle.__file__).parent.parent == ROOT / "models" / "attrition"
    rows = pd.read_csv(legacy / "rows.csv")
    expected = pd.DataFrame(json.loads((legacy / "expected.json").read_text()))
    got = model.predict(rows, params={"explain": "attributions", "drift": True})
    assert list(got.columns) == list(expected.columns)
    np.testing.assert_allclose(got["probability"], expected["probability"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["outlier_score"], expected["outlier_score"], rtol=0, atol=1e-12)
    for name in ("prediction", "is_outlier", "batch_is_drift", "batch_drifted_features"):
        assert got[name].tolist() == expected[name].tolist(), name
    for new, old in zip(got["explanation"], expected["explanation"], strict=True):
        new, old = json.loads(new), json.loads(old)
        assert new["method"] == old["method"] and new["scale"] == old["scale"]
        assert new["base_value"] == pytest.approx(old["base_value"], abs=1e-12)
        assert new["attributions"] == pytest.approx(old["attributions"], abs=1e-6)


def test_the_legacy_bundle_keeps_its_backend_and_self_check(legacy):
    bundle = attrition.bundle.load(str(legacy / "model"))
    assert bundle.info.trust_backend == "open" and bundle.backend.name == "open"
    assert bundle.scoring == "compiled" and bundle.info.self_check
