"""Names and places, defined once: the registered model, its aliases, and where MLflow keeps data.

Nothing here is a local path when ``MLFLOW_TRACKING_URI`` is set (e.g. ``databricks``): the same code
then runs on Databricks, with a Unity Catalog model name (``catalog.schema.model``) if you set one.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow

#: The registered model's name, one name everywhere: the local registry uses it as it is; Unity Catalog
#: as ``<catalog>.<schema>.employee_attrition`` (databricks.yml's ``model_name`` variable and the
#: overlays' ATTRITION_MODEL_NAME; tests/test_model_name.py checks they agree). Underscores, not
#: hyphens: a Unity Catalog name is an identifier.
DEFAULT_MODEL_NAME = "employee_attrition"
MODEL_NAME = os.environ.get("ATTRITION_MODEL_NAME", DEFAULT_MODEL_NAME)
STAGING = "staging"
PRODUCTION = "production"
#: The bundle's folder name inside a run / logged model.
BUNDLE_NAME = "bundle"


def env_flag(name: str, default: bool = False) -> bool:
    """A true/false environment variable, parsed as pydantic parses the runtime's settings
    (1/0, true/false, yes/no, on/off)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    from pydantic import TypeAdapter

    return TypeAdapter(bool).validate_python(value)


def project_home() -> Path:
    """Where local MLflow data lives: ``$ATTRITION_HOME``, else the source checkout, else the cwd."""
    if os.environ.get("ATTRITION_HOME"):
        return Path(os.environ["ATTRITION_HOME"]).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").exists():
        return checkout
    return Path.cwd()


def local_mlflow_dir() -> Path:
    return project_home() / "mlflow"


def local_inference_log_dir() -> Path:
    """The inference log's Delta table when ``ATTRITION_INFERENCE_LOG`` names none."""
    return project_home() / "inference-log"


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else an embedded sqlite store under the project."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    folder = local_mlflow_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def artifact_location(uri: str | None = None) -> str | None:
    """Artifacts of a sqlite store live beside its database file, not in the caller's cwd."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return None  # a tracking server or Databricks keeps its own artifact root


def configure_mlflow() -> str:
    """Point MLflow at the tracking store (and Unity Catalog when the model name has three parts)."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    if uri.startswith("databricks") and MODEL_NAME.count(".") == 2:
        mlflow.set_registry_uri("databricks-uc")
    return uri


def experiment_name() -> str:
    """Local runs go to ``employee-attrition``; Databricks wants a workspace path."""
    default = (
        "/Shared/employee-attrition" if tracking_uri().startswith("databricks") else "employee-attrition"
    )
    return os.environ.get("ATTRITION_EXPERIMENT", default)


def use_experiment() -> str:
    """Create the experiment if needed and select it."""
    name = experiment_name()
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=artifact_location())
    mlflow.set_experiment(name)
    return name


def model_uri(alias: str = PRODUCTION, name: str = MODEL_NAME) -> str:
    return f"models:/{name}@{alias}"
