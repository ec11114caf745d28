"""The runtime's settings, in one place: defaults here, overridden by ``parameters.extra`` of
model-settings.json, overridden in turn by ``ATTRITION_<NAME>`` environment variables (the way MLServer
reads its own ``MLSERVER_*`` settings, with the same library). Importable without mlserver."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from attrition import config
from attrition.contract.schema import FEATURES
from attrition.contract.trust import ANCHOR_BUDGET_S, MIN_DRIFT_ROWS

ENV_PREFIX = "ATTRITION_"
MAX_BATCH_ROWS = 1000
#: Bytes a request may take per value: a V2 JSON number or category name with its separator is under 30
#: bytes; 64 leaves room for names, shapes and whitespace. 1,000 rows x 30 inputs x 64 B = 1.9 MB.
BYTES_PER_VALUE = 64
#: Values of ``ATTRITION_INFERENCE_LOG`` that switch the log off.
INFERENCE_LOG_OFF = frozenset({"", "off", "false", "none"})


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", protected_namespaces=())

    #: The model: an MLflow URI (beats model-settings.json's ``uri``), else ``models:/<name>@<alias>``.
    model_uri: str | None = None
    model_alias: str = config.PRODUCTION
    #: How long loading keeps retrying an unreachable registry or artifact store before it gives up.
    registry_timeout_s: float = Field(60.0, gt=0)
    max_batch_rows: int = Field(MAX_BATCH_ROWS, ge=1)
    #: Request bodies over this many bytes get 413 before they are parsed (derived from max_batch_rows).
    max_body_bytes: int = Field(MAX_BATCH_ROWS * len(FEATURES) * BYTES_PER_VALUE, ge=1024)
    batch_drift_min_rows: int = Field(MIN_DRIFT_ROWS, ge=MIN_DRIFT_ROWS)
    drift_window: int = Field(200, ge=MIN_DRIFT_ROWS)
    drift_every: int = Field(50, ge=1)
    drift_min_interval_s: float = Field(1.0, ge=0)
    anchor_budget_s: float = Field(ANCHOR_BUDGET_S, gt=0)
    #: Anchor explanations running at once per worker (each takes a core for up to anchor_budget_s);
    #: more get 429 with Retry-After.
    max_concurrent_anchors: int = Field(1, ge=0)
    #: Explanation requests waiting or running per worker; more get 429 with Retry-After.
    max_queued_explanations: int = Field(8, ge=1)
    log_payloads: bool = False
    #: The inference log (a Delta table): a folder, ``abfss://container@account.dfs.core.windows.net/path``
    #: or ``az://container/path``; ``off`` switches it off. Default: ``inference-log/`` in the project home.
    inference_log: str = Field(default_factory=lambda: str(config.local_inference_log_dir()))
    #: delta-rs storage options on top of what it reads from the environment (JSON in the environment).
    inference_log_storage_options: dict[str, str] = Field(default_factory=dict)
    #: The writer commits every this many rows or this many seconds, whichever comes first: a
    #: ``kill -9`` loses at most the rows of one interval.
    inference_log_commit_rows: int = Field(1000, ge=1)
    inference_log_commit_s: float = Field(10.0, gt=0)
    #: Rows buffered per worker (while storage is down too); more are dropped and counted.
    inference_log_buffer_rows: int = Field(100_000, ge=1)
    #: How long a shutdown keeps trying to commit what is buffered: with the drain (ATTRITION_DRAIN_S,
    #: 30 s at most) within the pod's terminationGracePeriodSeconds (45 s).
    inference_log_flush_timeout_s: float = Field(10.0, gt=0)
    #: Days of log that ``attrition log compact`` keeps (whole days; none: keep everything); under
    #: ``attrition.inference_log.retention.min_retention_days()`` the outcomes report loses predictions.
    inference_log_retention_days: int | None = Field(None, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment (a Kubernetes ConfigMap) beats the file baked into the image.
        return env_settings, init_settings

    @property
    def inference_log_on(self) -> bool:
        return self.inference_log.strip().lower() not in INFERENCE_LOG_OFF

    def resolve_model_uri(self, settings_uri: str | None = None) -> str:
        """``ATTRITION_MODEL_URI``, else model-settings.json's ``uri``, else the alias in the registry.

        MLServer fills an absent ``uri`` with the folder of model-settings.json, which holds no model:
        a local folder counts only when it has an MLmodel file, so that the alias applies otherwise."""
        local = settings_uri and not urlparse(settings_uri).scheme
        if local and not (Path(settings_uri) / "MLmodel").exists():
            settings_uri = None
        return self.model_uri or settings_uri or config.model_uri(self.model_alias)


def env_name(setting: str) -> str:
    """The environment variable that overrides a setting (``model_uri`` -> ``ATTRITION_MODEL_URI``)."""
    if setting not in RuntimeSettings.model_fields:
        raise KeyError(setting)
    return ENV_PREFIX + setting.upper()


MODEL_URI_ENV = env_name("model_uri")
MODEL_ALIAS_ENV = env_name("model_alias")
INFERENCE_LOG_ENV = env_name("inference_log")
