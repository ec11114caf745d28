"""``python -m attrition_runtime.start <settings folder>``: ``mlserver start``, with two changes that a
production rollout needs (the container's entry point and the dev launcher both use it):

- **A model that fails to load is a failed start.** MLServer 1.7.1 logs the error, stops and exits 0,
  which Kubernetes shows as "Completed" restarts that alerts on non-zero exits miss. This exits 3.
- **Stopping drops no request.** MLServer closes its worker pool first and its HTTP server after,
  so requests in flight when SIGTERM arrives fail. This stops the listeners first, lets in-flight
  requests finish (up to ``ATTRITION_DRAIN_S``, default 30 s: covers the anchor budget), and only
  then closes the workers.

Both reach into MLServer's server object (``_rest_server``, ``_grpc_server``, ``_model_registry``):
mlserver is pinned exactly in pyproject.toml for that reason, and the tests exercise both paths.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from mlserver import MLServer
from mlserver.cli.serve import load_settings
from mlserver.logging import logger

#: Exit status of a start whose model did not load.
LOAD_FAILED = 3


class AttritionServer(MLServer):
    load_failed = False

    async def start(self, models_settings=()) -> None:
        registry_load = self._model_registry.load

        async def load(model_settings):
            try:
                return await registry_load(model_settings)
            except Exception:
                self.load_failed = True
                raise

        self._model_registry.load = load
        await super().start(list(models_settings))

    async def stop(self, sig: int | None = None) -> None:
        drain_s = float(os.environ.get("ATTRITION_DRAIN_S", "30"))
        if self._grpc_server:
            await self._grpc_server._server.stop(grace=drain_s)
        if self._rest_server:
            await self._rest_server.stop(sig)
            await _drained(self._rest_server._server, drain_s)
        if self._inference_pool_registry:
            await self._inference_pool_registry.close()
        if self._metrics_server:
            await self._metrics_server.stop(sig)


async def _drained(uvicorn_server, timeout_s: float) -> None:
    """Until uvicorn has answered every request it accepted (it stops accepting on handle_exit)."""
    deadline = time.monotonic() + timeout_s
    while uvicorn_server.server_state.tasks and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def serve(folder: str) -> int:
    settings, models_settings = await load_settings(folder)
    server = AttritionServer(settings)
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
