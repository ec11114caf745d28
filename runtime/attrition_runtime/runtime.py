"""The MLServer runtime: loads the registered bundle by MLflow URI and answers each V2 request with
probabilities, outlier scores, batch drift and, on request, explanations.

MLServer imports this module in its main process too, which only forwards requests to the worker:
everything heavy (mlflow, scikit-learn, the bundle) is imported in :meth:`AttritionRuntime.load`, which
runs in the worker alone, so the main process stays small.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
from mlserver.errors import InferenceError
from mlserver.logging import logger
from mlserver.types import InferenceRequest, InferenceResponse, Parameters
from mlserver_mlflow import MLflowRuntime

from attrition.errors import InvalidInput
from attrition.signals import Explain
from attrition_runtime import contract
from attrition_runtime.settings import RuntimeSettings


class InvalidRequest(InferenceError):
    """A refused request (HTTP 400, gRPC INVALID_ARGUMENT) that keeps the field it refuses."""

    def __init__(self, error: InvalidInput):
        super().__init__(str(error))
        self.field = error.field


@dataclass
class Request:
    """A decoded, validated V2 request."""

    codes: np.ndarray
    explain: Explain
    drift: bool
    columns: dict[str, np.ndarray]


class AttritionRuntime(MLflowRuntime):
    """Keeps mlserver-mlflow's MLflow scoring-server endpoints (``/invocations``, ``/ping``, backed by
    the same pyfunc and its params ``explain``, ``drift``, ``anchor_budget_s``), but loads by our URI
    rules and decodes V2 requests itself: the stock decoding turns bad input into HTTP 500 and hands
    gRPC BYTES over as raw bytes."""

    async def load(self) -> bool:
        import mlflow

        from attrition import config, registry
        from attrition_runtime.monitoring import DriftWindow, Monitor

        config.configure_mlflow()
        params = self.settings.parameters
        self.options = RuntimeSettings(**(params.extra if params and params.extra else {}))
        self.model_uri = self.options.resolve_model_uri(params.uri if params else None)
        logger.info(f"Loading {self.model_uri}")
        self._model = mlflow.pyfunc.load_model(self.model_uri)
        self._signature = self._model.metadata.signature
        self._input_schema = self._model.metadata.get_input_schema()
        self.bundle = self._model.unwrap_python_model().bundle
        self.bundle_version = registry.version_of(self.model_uri) or self.model_uri
        self.inputs = contract.input_metadata()
        self.outputs = contract.output_metadata()
        window = DriftWindow(
            self.options.drift_window, self.options.drift_every, self.options.drift_min_interval_s
        )
        self.monitor = Monitor(
            self.name, self.bundle_version, self.bundle.drift_codes, window, self.options.log_payloads
        )
        redact_rejected_input()
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
        return InferenceResponse(
            id=payload.id,
            model_name=self.name,
            model_version=self.version or self.bundle_version,
            outputs=outputs,
            parameters=self._parameters(request, report),
        )

    def decode(self, payload: InferenceRequest) -> Request:
        from attrition.schema import encode

        try:
            explain = contract.explain_mode(payload.parameters)
            drift = contract.drift_requested(payload.parameters)
            columns = contract.decode_inputs(payload.inputs, self.options.max_batch_rows)
            return Request(encode(columns), explain, drift, columns)
        except InvalidInput as error:
            raise InvalidRequest(error) from error

    async def explain(self, request: Request) -> list[dict]:
        # In a thread: anchors wait on a child process for seconds, and the worker must keep answering.
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                None, self.bundle.explain_codes, request.codes, request.explain, self.options.anchor_budget_s
            )
        except InvalidInput as error:  # e.g. anchors asked of a bundle that has none
            raise InvalidRequest(error) from error

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


def _records(request: Request) -> list[dict]:
    names = list(request.columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*request.columns.values(), strict=True)]


class RedactRejectedInput(logging.Filter):
    """MLServer's worker logs every exception with its message and traceback; for rejected input the
    message quotes the offending value (personal data) and the client already got it. Keep one line
    naming the field instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, InvalidRequest):
            record.msg, record.args, record.exc_info, record.exc_text = (
                f"rejected invalid input (HTTP {error.status_code}) in field {error.field!r}",
                None,
                None,
                None,
            )
        return True


def redact_rejected_input() -> None:
    """Install :class:`RedactRejectedInput` on MLServer's worker logger (once)."""
    worker_logger = logging.getLogger("mlserver.parallel")
    if not any(isinstance(f, RedactRejectedInput) for f in worker_logger.filters):
        worker_logger.addFilter(RedactRejectedInput())
