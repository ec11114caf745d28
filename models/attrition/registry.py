"""The registered model's life: a new version becomes ``staging``; ``promote`` moves ``production``."""

from __future__ import annotations

import re
from typing import NamedTuple

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from attrition import config


def _client() -> MlflowClient:
    config.configure_mlflow()
    return MlflowClient()


def alias_version(alias: str, name: str = config.MODEL_NAME) -> str | None:
    """The version an alias points at, or None (also when the model is not registered)."""
    try:
        return str(_client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def mark_new_version(
    version: str, name: str = config.MODEL_NAME, tags: dict[str, str] | None = None
) -> list[str]:
    """Tag a freshly registered version and alias it ``staging``; on a registry with no ``production``
    yet, that too, so that serving works out of the box. Returns the aliases set."""
    client = _client()
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, config.STAGING, version)
    aliases = [config.STAGING]
    if alias_version(config.PRODUCTION, name) is None:
        client.set_registered_model_alias(name, config.PRODUCTION, version)
        aliases.append(config.PRODUCTION)
    return aliases


def promote(version: str | None = None, name: str = config.MODEL_NAME) -> str:
    """Point ``production`` at ``version`` (default: the version ``staging`` points at)."""
    version = version or alias_version(config.STAGING, name)
    if version is None:
        raise LookupError(f"model {name!r} has no {config.STAGING!r} version to promote")
    client = _client()
    client.get_model_version(name, version)  # raises a clear error for an unknown version
    client.set_registered_model_alias(name, config.PRODUCTION, version)
    return version


class Pinned(NamedTuple):
    """A model URI pinned to a registry version (``version`` None for a run or a folder)."""

    uri: str
    version: str | None


def pin(model_uri: str) -> Pinned:
    """``models:/name@alias`` -> (``models:/name/<version>``, version), so that one job or one server
    uses one version throughout; ``models:/name/<version>`` is kept; any other URI has no version.
    Raises LookupError for an alias that points nowhere. Shared by the batch job and the runtime."""
    match = re.fullmatch(r"models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)", model_uri)
    if match:
        version = alias_version(match["alias"], match["name"])
        if version is None:
            raise LookupError(
                f"{model_uri}: model {match['name']!r} has no version aliased {match['alias']!r}"
            )
        return Pinned(f"models:/{match['name']}/{version}", version)
    match = re.fullmatch(r"models:/(?P<name>[^/@]+)/(?P<version>\d+)", model_uri)
    if match:
        return Pinned(model_uri, match["version"])
    return Pinned(model_uri, None)


def version_of(model_uri: str) -> str | None:
    """The registry version behind a model URI (:func:`pin`); None for any other URI, or an alias that
    points nowhere."""
    try:
        return pin(model_uri).version
    except LookupError:
        return None
