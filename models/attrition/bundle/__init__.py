"""The bundle: one MLflow pyfunc model carrying the classifier and its trust signals (drift reference,
outlier forest, explainers), loadable in a clean environment.

Bundles logged before the package was split pickle ``attrition.bundle.AttritionModel``: that name
stays importable from here (tests/test_bundle_compat.py loads such a bundle).
"""

from pathlib import Path

import mlflow

from attrition.bundle.build import build, log_bundle
from attrition.bundle.info import BundleInfo, installed_versions, pip_requirements, requirements
from attrition.bundle.pyfunc import AttritionModel, signature
from attrition.bundle.trust_bundle import TrustBundle


def load(model_uri: str) -> TrustBundle:
    """The :class:`TrustBundle` behind a logged or registered bundle (any MLflow URI or local folder)."""
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().bundle


def export(model_uri: str, folder: str | Path) -> Path:
    """Copy a logged or registered bundle into a local MLflow model folder (servable by its path)."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty")
    folder.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(folder)))


__all__ = [
    "AttritionModel",
    "BundleInfo",
    "TrustBundle",
    "build",
    "export",
    "installed_versions",
    "load",
    "log_bundle",
    "pip_requirements",
    "requirements",
    "signature",
]
