"""Runtime options and model choice, importable without mlserver (see client.py for why)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from attrition import config
from attrition.bundle import ANCHOR_BUDGET_S
from attrition.detectors import MIN_DRIFT_ROWS

#: Environment variables that choose the model when model-settings.json gives no ``uri``.
MODEL_URI_ENV = "ATTRITION_MODEL_URI"
MODEL_ALIAS_ENV = "ATTRITION_MODEL_ALIAS"


@dataclass(frozen=True)
class RuntimeOptions:
    """``parameters.extra`` of model-settings.json (each overridable by ``ATTRITION_<NAME>``)."""

    max_batch_rows: int = 1000
    batch_drift_min_rows: int = MIN_DRIFT_ROWS
    drift_window: int = 200
    drift_every: int = 50
    drift_min_interval_s: float = 1.0
    anchor_budget_s: float = ANCHOR_BUDGET_S
    log_payloads: bool = False

    @classmethod
    def from_settings(cls, extra: dict | None) -> RuntimeOptions:
        values = {}
        for field in fields(cls):
            raw = os.environ.get(
                f"ATTRITION_{field.name.upper()}", (extra or {}).get(field.name, field.default)
            )
            kind = type(field.default)
            values[field.name] = str(raw).lower() in {"1", "true", "yes"} if kind is bool else kind(raw)
        options = cls(**values)
        if options.batch_drift_min_rows < MIN_DRIFT_ROWS:
            raise ValueError(f"batch_drift_min_rows must be at least {MIN_DRIFT_ROWS}")
        return options


def resolve_model_uri(settings_uri: str | None) -> str:
    """model-settings.json's uri, else ``$ATTRITION_MODEL_URI``, else ``models:/<name>@<alias>``."""
    if os.environ.get(MODEL_URI_ENV):
        return os.environ[MODEL_URI_ENV]
    if settings_uri:
        return settings_uri
    return config.model_uri(os.environ.get(MODEL_ALIAS_ENV, config.PRODUCTION))
