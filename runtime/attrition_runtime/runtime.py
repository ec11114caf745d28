"""The MLServer runtime: loads the registered bundle by MLflow URI and answers each V2 request with
probabilities, outlier scores, batch drift and, on request, explanations."""

from __future__ import annotations

import asyncio
import logging
import time

import mlflow
from mlserver.errors import InferenceError, MLServerError
from mlserver.logging import logger
from mlserver.types import InferenceRequest, InferenceResponse, Parameters
from mlserver_mlflow import MLflowRuntime

from attrition import config
from attrition.bundle import TrustBundle
from attrition.schema import SchemaError, to_codes, validate_features
from attrition_runtime import contract
from attrition_runtime.monitoring import DriftWindow, Metrics, Telemetry
from attrition_runtime.options import RuntimeOptions, resolve_model_uri


def registry_version(model_uri: str) -> str:
    """The registry version behind ``models:/name@alias`` or ``models:/name/N``; else the URI itself."""
    if not model_uri.startswith("models:/"):
        return model_uri
    ref = model_uri.removeprefix("models:/")
    client = mlflow.MlflowClient()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return str(client.get_model_version_by_alias(name, alias).version)
    return ref.rsplit("/", 1)[-1]


class AttritionRuntime(MLflowRuntime):
    """Keeps mlserver-mlflow's MLflow scoring-server endpoints (``/invocations``, ``/ping``, backed by
    the same pyfunc and its params ``explain``, ``drift``, ``anchor_budget_s``), but loads by our URI
    rules and decodes V2 requests itself: the stock decoding turns bad input into HTTP 500 and hands
    gRPC BYTES over as raw bytes."""

    async def load(self) -> bool:
        config.configure_mlflow()
        params = self.settings.parameters
        self.options = RuntimeOptions.from_settings(params.extra if params else None)
        self.model_uri = resolve_model_uri(params.uri if params else None)
        logger.info(f"Loading {self.model_uri}")
        self._model = mlflow.pyfunc.load_model(self.model_uri)
        self._signature = self._model.metadata.signature
        self._input_schema = self._model.metadata.get_input_schema()
        self.bundle: TrustBundle = self._model.unwrap_python_model().bundle
        self.bundle_version = registry_version(self.model_uri)
        self.inputs = contract.input_metadata()
        self.outputs = contract.output_metadata()
        self.window = DriftWindow(
            self.options.drift_window, self.options.drift_every, self.options.drift_min_interval_s
        )
        self.metrics = Metrics(self.name, self.bundle_version)
        self.telemetry = Telemetry(self.name, self.bundle_version, self.options.log_payloads)
        self._window_task: asyncio.Future | None = None
        redact_rejected_input()
        logger.info(
            f"Loaded {self.model_uri} (version {self.bundle_version}, {self.bundle.info.model_family})"
        )
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        started = time.perf_counter()
        mode = contract.explain_mode(payload.parameters)
        drift = contract.drift_requested(payload.parameters)
        raw = contract.decode_inputs(payload.inputs, self.options.max_batch_rows)
        try:
            features = validate_features(raw)
        except SchemaError as exc:
            raise InferenceError(str(exc)) from exc
        codes = to_codes(features)
        scores = self.bundle.score(features, codes)
        outputs = contract.encode_scores(scores)
        report = None
        if drift and len(features) >= self.options.batch_drift_min_rows:
            report = self.bundle.drift_codes(codes)
            outputs += contract.encode_drift(report)
            self.metrics.observe_batch_drift(report)
        if mode != "none":
            loop = asyncio.get_running_loop()
            # In a thread: anchors wait on a child process for seconds, and the worker must keep answering.
            explanations = await loop.run_in_executor(
                None, self.bundle.explain, features, mode, self.options.anchor_budget_s
            )
            outputs.append(contract.encode_explanations(explanations))
        outliers = scores["is_outlier"].to_numpy()
        self.metrics.observe_scores(scores["probability"].to_numpy(), int(outliers.sum()))
        self._feed_window(codes, outliers)
        self.telemetry.log(
            payload.id,
            started,
            rows=len(features),
            mean_probability=round(float(scores["probability"].mean()), 6),
            predicted_leavers=int((scores["prediction"] == "Yes").sum()),
            outliers=int(outliers.sum()),
            batch_drift=None if report is None else report.is_drift,
            batch_drifted_features=None if report is None else report.drifted,
            window_drift=None if self.window.last is None else self.window.last.is_drift,
            explain=mode,
            payload=raw.to_dict(orient="records") if self.options.log_payloads else None,
        )
        parameters = Parameters(
            model_uri=self.model_uri, decision_threshold=self.bundle.info.decision_threshold
        )
        if report is None:
            parameters.drift = (
                f"not tested: batch drift needs at least {self.options.batch_drift_min_rows} rows"
                if drift
                else "not tested: switched off by the request"
            )
        return InferenceResponse(
            id=payload.id,
            model_name=self.name,
            model_version=self.version or self.bundle_version,
            outputs=outputs,
            parameters=parameters,
        )

    def _feed_window(self, codes, outliers) -> None:
        due = self.window.add(codes, outliers)
        if due is None:
            return
        window_codes, outlier_rate = due

        def test() -> None:
            report = None
            try:
                report = self.bundle.drift_codes(window_codes)
                self.metrics.observe_window(report, outlier_rate)
            finally:
                self.window.tested(report)

        # Off the request path: the K-S and chi-squared tests on the window take tens of milliseconds.
        self._window_task = asyncio.get_running_loop().run_in_executor(None, test)


class RedactRejectedInput(logging.Filter):
    """MLServer's worker logs every exception with its message and traceback; for rejected input the
    message quotes the offending value (personal data) and the client already got it. Keep one line
    naming the field instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, MLServerError) and 400 <= exc.status_code < 500:
            field = str(exc).split(":", 1)[0]
            record.msg, record.args, record.exc_info, record.exc_text = (
                f"rejected invalid input (HTTP {exc.status_code}) in field {field!r}",
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
