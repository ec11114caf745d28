"""The MLServer runtime: loads the registered bundle by MLflow URI and answers each V2 request with
probabilities, outlier scores, batch drift and, on request, explanations.

MLServer imports this module in its main process too, which only forwards requests to the worker:
everything heavy (mlflow, scikit-learn, the bundle) is imported in :meth:`AttritionRuntime.load`, which
runs in the worker alone, so the main process stays small.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from fastapi import status
from mlserver.errors import InferenceError, MLServerError
from mlserver.logging import logger
from mlserver.types import InferenceRequest, InferenceResponse, MetadataModelResponse, Parameters
from mlserver_mlflow import MLflowRuntime

from attrition.contract.errors import BundleError, InvalidInput
from attrition.contract.trust import Explain
from attrition_runtime import contract
from attrition_runtime.settings import RuntimeSettings
from attrition_runtime.wire import REST_EXTENSIONS


class InvalidRequest(InferenceError):
    """A refused request (HTTP 400, gRPC INVALID_ARGUMENT) that keeps the field it refuses."""

    def __init__(self, error: InvalidInput):
        super().__init__(str(error))
        self.field = error.field


class Overloaded(MLServerError):
    """Explanation work over its per-worker cap: HTTP 429 (gRPC RESOURCE_EXHAUSTED) with Retry-After.
    Scoring is never refused for it."""

    def __init__(self, message: str):
        super().__init__(message, status.HTTP_429_TOO_MANY_REQUESTS)


class Slots:
    """A non-blocking counting limit: a request either gets a slot at once or is refused."""

    def __init__(self, limit: int):
        self.limit, self._used, self._lock = limit, 0, threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._used >= self.limit:
                return False
            self._used += 1
            return True

    def give(self) -> None:
        with self._lock:
            self._used -= 1


@dataclass
class Request:
    """A decoded, validated V2 request."""

    codes: np.ndarray
    explain: Explain
    drift: bool
    columns: dict[str, np.ndarray]
    #: The optional ``employee_id`` input, one per row (never a feature).
    entities: list | None = None


class AttritionRuntime(MLflowRuntime):
    """Keeps mlserver-mlflow's MLflow scoring-server endpoints (``/invocations``, ``/ping``, backed by
    the same pyfunc and its params ``explain``, ``drift``, ``anchor_budget_s``), but loads by our URI
    rules and decodes V2 requests itself: the stock decoding turns bad input into HTTP 500 and hands
    gRPC BYTES over as raw bytes."""

    async def load(self) -> bool:
        from attrition import config, registry
        from attrition_runtime.monitoring import DriftWindow, Monitor

        redact_rejected_input()  # before anything can fail: load errors are logged in one line too
        config.configure_mlflow()
        params = self.settings.parameters
        self.options = RuntimeSettings(**(params.extra if params and params.extra else {}))
        self.model_uri = self.options.resolve_model_uri(params.uri if params else None)
        logger.info(f"Loading {self.model_uri}")
        self._model = load_with_retries(self.model_uri, self.options.registry_timeout_s)
        self._signature = self._model.metadata.signature
        self._input_schema = self._model.metadata.get_input_schema()
        self.bundle = self._model.unwrap_python_model().bundle
        self.bundle_version = registry.version_of(self.model_uri) or self.model_uri
        self.inputs = contract.input_metadata()
        self.outputs = contract.output_metadata()
        window = DriftWindow(
            self.options.drift_window, self.options.drift_every, self.options.drift_min_interval_s
        )
        self.explanations = Slots(self.options.max_queued_explanations)
        self.anchors = Slots(self.options.max_concurrent_anchors)
        self.monitor = Monitor(
            self.name,
            self.bundle_version,
            self.bundle.drift_codes,
            window,
            self.options.log_payloads,
            training_roc_auc=self.bundle.info.cv_roc_auc,
        )
        self.logbook = self._open_logbook()
        # Ready now; the first drift test's and explanation's imports are done in the background.
        threading.Thread(target=self.bundle.warm_up, name="attrition-warm-up", daemon=True).start()
        info = self.bundle.info
        logger.info(
            f"Loaded {self.model_uri} (version {self.bundle_version}, {info.model_family}, "
            f"{info.trust_backend} trust backend, {self.bundle.scoring} scoring"
            + (f": not compiled because {info.not_compiled}" if info.not_compiled else "")
            + ")"
        )
        return True

    async def metadata(self) -> MetadataModelResponse:
        """MLServer's, and the REST extensions the server speaks beyond V2 JSON (clients check here)."""
        metadata = await super().metadata()
        content_type = metadata.parameters.content_type if metadata.parameters else None
        metadata.parameters = Parameters(content_type=content_type, extensions=list(REST_EXTENSIONS))
        return metadata

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        started = time.perf_counter()
        request = self.decode(payload)
        scores = self.bundle.score_codes(request.codes)
        outputs = contract.encode_scores(scores)
        report = None
        if request.drift and len(request.codes) >= self.options.batch_drift_min_rows:
            report = self.bundle.drift_codes(request.codes)
            outputs += contract.encode_drift(report)
        if request.explain is not Explain.NONE:
            outputs.append(contract.encode_explanations(await self.explain(request)))
        self.monitor.observe(
            payload.id, started, request.codes, scores, report, request.explain, lambda: _records(request)
        )
        if self.logbook is not None:
            self.logbook.record(payload.id, request.entities, scores, report)
        return InferenceResponse(
            id=payload.id,
            model_name=self.name,
            model_version=self.version or self.bundle_version,
            outputs=outputs,
            parameters=self._parameters(request, report),
        )

    def decode(self, payload: InferenceRequest) -> Request:
        from attrition.contract.schema import encode

        try:
            explain = contract.explain_mode(payload.parameters)
            drift = contract.drift_requested(payload.parameters)
            columns = contract.decode_inputs(payload.inputs, self.options.max_batch_rows)
            entities = contract.decode_entities(payload.inputs, len(next(iter(columns.values()))))
            return Request(encode(columns), explain, drift, columns, entities)
        except InvalidInput as error:
            raise InvalidRequest(error) from error

    def _open_logbook(self):
        """The inference log's writer for this worker, or None when the log is switched off."""
        if not self.options.inference_log_on:
            logger.info("inference log: off (ATTRITION_INFERENCE_LOG)")
            return None
        from attrition_runtime.logbook import Logbook

        version = self.version or self.bundle_version
        return Logbook(self.options, self.name, version, self.bundle.info.trust_backend, logger)

    async def unload(self) -> bool:
        """Commits the inference log's buffer: the server unloads its models on SIGTERM (start.py)."""
        logbook = getattr(self, "logbook", None)
        if logbook is not None:
            self.logbook = None
            await asyncio.get_running_loop().run_in_executor(None, logbook.close)
        return await super().unload()

    async def explain(self, request: Request) -> list[dict]:
        anchors = request.explain is Explain.ANCHORS
        if not self.explanations.take():
            raise Overloaded(
                f"explain: {self.options.max_queued_explanations} explanation requests are already waiting "
                "or running in this worker (max_queued_explanations); retry shortly or ask without explain"
            )
        try:
            if anchors and not self.anchors.take():
                raise Overloaded(
                    f"explain: anchors: {self.options.max_concurrent_anchors} anchor explanation(s) already "
                    "running in this worker (max_concurrent_anchors); retry shortly or ask for attributions"
                )
            try:
                # In a thread: anchors wait on a child process for seconds, and the worker must keep
                # answering. Explainers are never shared by two requests at once (TrustBundle).
                return await asyncio.get_running_loop().run_in_executor(
                    None,
                    self.bundle.explain_codes,
                    request.codes,
                    request.explain,
                    self.options.anchor_budget_s,
                )
            finally:
                if anchors:
                    self.anchors.give()
        except InvalidInput as error:  # e.g. anchors asked of a bundle that has none
            raise InvalidRequest(error) from error
        finally:
            self.explanations.give()

    def _parameters(self, request: Request, report) -> Parameters:
        parameters = Parameters(
            model_uri=self.model_uri, decision_threshold=self.bundle.info.decision_threshold
        )
        if report is None:
            parameters.drift = (
                f"not tested: batch drift needs at least {self.options.batch_drift_min_rows} rows"
                if request.drift
                else "not tested: switched off by the request"
            )
        return parameters


class ModelUnavailable(MLServerError):
    """The registry or artifact store could not be reached in time (HTTP 503 if it ever reaches one)."""

    def __init__(self, message: str):
        super().__init__(message, status.HTTP_503_SERVICE_UNAVAILABLE)


def _unreachable(error: BaseException) -> bool:
    """A registry or artifact store that did not answer (worth retrying), as opposed to an answer that
    says no (a missing model, a denied token) or a bundle that cannot load (a retry would not help)."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    if isinstance(error, RequestException | ConnectionError | TimeoutError):
        return True
    if isinstance(error, MlflowException):
        return error.error_code == "TEMPORARILY_UNAVAILABLE" or "API request to" in str(error)
    return False


def load_with_retries(model_uri: str, timeout_s: float):
    """``mlflow.pyfunc.load_model``, retried with exponential backoff while the registry or artifact
    store is unreachable, for at most ``timeout_s``; then one error that names what could not be
    reached, without the underlying traceback (it can carry URLs and request headers)."""
    import mlflow

    from attrition import config

    # MLflow's own HTTP retries (7, with backoff) would take minutes per attempt: ours bound the wait.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    deadline, delay, attempt = time.monotonic() + timeout_s, 0.5, 0
    while True:
        attempt += 1
        try:
            return mlflow.pyfunc.load_model(model_uri)
        except Exception as error:
            if not _unreachable(error):
                raise
            if time.monotonic() + delay > deadline:
                store = _without_credentials(config.tracking_uri())
                raise ModelUnavailable(
                    f"registry: could not load {model_uri} from {store} within {timeout_s:g} s "
                    f"({attempt} attempts; last error: {type(error).__name__})"
                ) from None
            logger.warning(f"registry unreachable ({type(error).__name__}); retrying in {delay:.1f} s")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _without_credentials(uri: str) -> str:
    """The store's URI for a log line: no user, password or query (a token can hide in either)."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        uri = urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))
    return uri.split("?", 1)[0]


def _records(request: Request) -> list[dict]:
    names = list(request.columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*request.columns.values(), strict=True)]


class RedactRejectedInput(logging.Filter):
    """MLServer's worker logs every exception with its message and traceback. For rejected input the
    message quotes the offending value (personal data) and the client already got it: keep one line
    naming the field. For a model that cannot be served, one line that says why."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, InvalidRequest):
            message = f"rejected invalid input (HTTP {error.status_code}) in field {error.field!r}"
        elif isinstance(error, ModelUnavailable | BundleError):
            message = f"the model cannot be served: {error}"  # one line; the cause is in the message
        else:
            return True
        record.msg, record.args, record.exc_info, record.exc_text = message, None, None, None
        return True


def redact_rejected_input() -> None:
    """Install :class:`RedactRejectedInput` on MLServer's worker logger (once)."""
    worker_logger = logging.getLogger("mlserver.parallel")
    if not any(isinstance(f, RedactRejectedInput) for f in worker_logger.filters):
        worker_logger.addFilter(RedactRejectedInput())
