"""``python -m attrition_runtime.start <settings folder>``: ``mlserver start``, with the changes that a
production rollout needs (the container's entry point and the dev launcher both use it):

- **A model that fails to load is a failed start.** MLServer 1.7.1 logs the error, stops and exits 0,
  which Kubernetes shows as "Completed" restarts that alerts on non-zero exits miss. This exits 3.
- **Stopping drops no request.** MLServer closes its worker pool first and its HTTP server after,
  so requests in flight when SIGTERM arrives fail. This stops the listeners first, lets in-flight
  requests finish (gRPC and REST together within ``ATTRITION_DRAIN_S``, default 30 s: covers the
  anchor budget; the Deployment sets it to fit its grace period), and only then closes the workers.
- **Stopping loses no logged row.** After the drain, the models are unloaded, which runs each worker's
  ``unload``: the inference log's writer commits what it buffered (MLServer's own stop closes the
  workers without unloading).
- **A dead worker is a 503, not a 500.** When the worker process dies (an OOM kill), MLServer fails
  the requests it had and the ones sent before its replacement is ready with 500s, and readiness stays
  200. Here they get 503 (gRPC UNAVAILABLE) with Retry-After, and readiness fails until the new worker
  has loaded the model.
- **The REST front door** of :mod:`attrition_runtime.guard`: body size limit (413), management
  endpoints closed to all but the pod's loopback (403), Retry-After on 429 and 503, compressed bodies
  inflated within the limit, unsupported media types refused (415).
- **The binary tensor data extension** (:mod:`attrition_runtime.binary_rest`), next to MLServer's
  routes, and validation errors that never echo the body (FastAPI's handler fails on bytes that are not
  UTF-8: a 500): 400 for a body that is not JSON, 422 for JSON that is not a V2 request.
- **The gRPC repository API** closed the same way (PERMISSION_DENIED), by the interceptor of
  :mod:`attrition_runtime.repository_interceptor`.

Both reach into MLServer's server object (``_rest_server``, ``_grpc_server``, ``_model_registry``):
mlserver is pinned exactly in pyproject.toml for that reason, and the tests exercise both paths.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

import grpc
from fastapi import status
from fastapi.exceptions import RequestValidationError
from mlserver import MLServer
from mlserver.cli.serve import load_settings
from mlserver.errors import MLServerError
from mlserver.grpc.utils import STATUS_CODE_MAPPING
from mlserver.logging import logger
from mlserver.parallel.errors import WorkerStop
from starlette.middleware import Middleware

from attrition_runtime.binary_rest import BinaryTensors
from attrition_runtime.guard import Guard
from attrition_runtime.repository_interceptor import GuardedGRPCServer
from attrition_runtime.settings import RuntimeSettings
from attrition_runtime.validation import refuse_invalid_body

#: Exit status of a start whose model did not load.
LOAD_FAILED = 3
# MLServer maps HTTP statuses to gRPC codes with this table, which lacks the overload statuses our
# runtime raises (anything missing becomes UNKNOWN).
STATUS_CODE_MAPPING.setdefault(status.HTTP_429_TOO_MANY_REQUESTS, grpc.StatusCode.RESOURCE_EXHAUSTED)
STATUS_CODE_MAPPING.setdefault(status.HTTP_503_SERVICE_UNAVAILABLE, grpc.StatusCode.UNAVAILABLE)


class WorkerRestarting(MLServerError):
    def __init__(self):
        super().__init__(
            "the scoring worker stopped and is being restarted; retry in a few seconds",
            status.HTTP_503_SERVICE_UNAVAILABLE,
        )


class QuietRefusals(logging.Filter):
    """MLServer's gRPC servicer logs every refused request with its traceback and message, which quotes
    the rejected value (personal data) and which the client already has: one line, without either."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, MLServerError) and error.status_code < 500:
            record.msg = (
                f"refused a gRPC request (HTTP status {error.status_code}; the client has the reason)"
            )
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


class AttritionServer(MLServer):
    load_failed = False

    def __init__(self, settings, runtime_settings: RuntimeSettings | None = None):
        super().__init__(settings)
        logging.getLogger("mlserver.grpc").addFilter(QuietRefusals())
        runtime_settings = runtime_settings or RuntimeSettings()
        #: False from a worker's unexpected stop until its replacement has loaded the model.
        self.scoring_available = True
        if self._inference_pool_registry:
            # The dispatcher's own handlers, wrapped: they run the moment a worker is found dead (when
            # the round robin loses it) and when its replacement has loaded the model.
            dispatcher = self._inference_pool_registry._default_pool._dispatcher
            worker_stopped, worker_ready = dispatcher.on_worker_stop, dispatcher.on_worker_ready

            def on_worker_stop(worker, exit_code) -> None:
                self.scoring_available = False
                worker_stopped(worker, exit_code)

            def on_worker_ready(worker) -> None:
                worker_ready(worker)
                self.scoring_available = True

            dispatcher.on_worker_stop, dispatcher.on_worker_ready = on_worker_stop, on_worker_ready
        # Before the app starts: Starlette builds its middleware stack on the first request.
        app = self._rest_server._app
        app.add_middleware(
            Guard, max_body_bytes=runtime_settings.max_body_bytes, available=lambda: self.scoring_available
        )
        # Innermost (add_middleware puts a middleware outermost): MLServer's metrics, GZip and CORS
        # middlewares see binary requests as they see JSON ones.
        app.user_middleware.append(Middleware(BinaryTensors, infer=self._data_plane.infer))
        app.add_exception_handler(RequestValidationError, refuse_invalid_body)

    def _create_servers(self) -> None:
        super()._create_servers()
        # MLServer's gRPC server, built the same way, with the repository interceptor first.
        self._grpc_server = GuardedGRPCServer(
            self._settings, self._data_plane, self._model_repository_handlers
        )

    def _guard_predict(self, model) -> None:
        """Requests that find no live worker get 503 instead of MLServer's 500: WorkerStop for those in
        flight, and the round robin's KeyError or StopIteration (surfacing as RuntimeError from the
        coroutine) for those dispatched while the worker is gone."""
        predict = model.predict

        async def guarded(payload):
            if not self.scoring_available:
                raise WorkerRestarting()
            try:
                return await predict(payload)
            except (WorkerStop, KeyError):
                raise WorkerRestarting() from None
            except RuntimeError as error:
                if isinstance(error.__cause__, StopIteration):
                    raise WorkerRestarting() from None
                raise

        model.predict = guarded

    async def start(self, models_settings=()) -> None:
        registry_load = self._model_registry.load

        async def load(model_settings):
            try:
                model = await registry_load(model_settings)
            except Exception:
                self.load_failed = True
                raise
            # The registry serves what its load hooks made of the model (the pool's proxy), not the
            # object load returns.
            self._guard_predict(await self._model_registry.get_model(model_settings.name))
            return model

        self._model_registry.load = load
        await super().start(list(models_settings))
        # MLServer's start returns as soon as its listeners end, which on SIGTERM (uvicorn handles it
        # too) can be before the stop it triggers has closed the workers: asyncio.run would cancel that
        # stop, and the exit would then hang on the worker pool's threads. Finish (or run) it here.
        await self.stop()

    async def stop(self, sig: int | None = None) -> None:
        """Idempotent: the signal handler and start() may both call it."""
        if getattr(self, "_stopping", None) is None:
            self._stopping = asyncio.ensure_future(self._stop(sig))
        await asyncio.shield(self._stopping)

    async def _stop(self, sig: int | None) -> None:
        # One budget for both protocols, so that the drain fits the pod's grace period.
        deadline = time.monotonic() + float(os.environ.get("ATTRITION_DRAIN_S", "30"))
        if self._grpc_server:
            await self._grpc_server._server.stop(grace=max(0.0, deadline - time.monotonic()))
        if self._rest_server:
            await self._rest_server.stop(sig)
            await _drained(self._rest_server._server, max(0.0, deadline - time.monotonic()))
        await self._unload_models()
        if self._inference_pool_registry:
            await self._inference_pool_registry.close()
        if self._metrics_server:
            await self._metrics_server.stop(sig)

    async def _unload_models(self) -> None:
        """Each model's unload in every worker (the inference log's final commit), before the pool
        closes; a failure is logged, never keeps the server from stopping."""
        for model in list(await self._model_registry.get_models()):
            try:
                await self._model_registry.unload_version(model.name, model.version)
            except Exception as error:
                logger.warning(f"unloading {model.name} at shutdown failed: {type(error).__name__}: {error}")


async def _drained(uvicorn_server, timeout_s: float) -> None:
    """Until uvicorn has stopped accepting and answered every request it accepted. handle_exit only
    asks its main loop to stop (within 0.1 s): until the listeners close, new connections still
    arrive, and a moment without a request in flight is not the end of them."""
    deadline = time.monotonic() + timeout_s

    def busy() -> bool:
        state = uvicorn_server.server_state
        listening = any(server.is_serving() for server in getattr(uvicorn_server, "servers", []))
        return listening or bool(state.connections) or bool(state.tasks)

    while busy() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def serve(folder: str) -> int:
    settings, models_settings = await load_settings(folder)
    extra = [m.parameters.extra for m in models_settings if m.parameters and m.parameters.extra]
    server = AttritionServer(settings, RuntimeSettings(**(extra[0] if extra else {})))
    await server.start(models_settings)
    if server.load_failed:
        logger.error("the model failed to load (see above): exiting with status %d", LOAD_FAILED)
        return LOAD_FAILED
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m attrition_runtime.start <folder with settings.json>", file=sys.stderr)
        return 2
    return asyncio.run(serve(args[0]))


if __name__ == "__main__":
    sys.exit(main())
