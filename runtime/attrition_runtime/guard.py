"""The REST front door, as ASGI middlewares in MLServer's main process (added by
:mod:`attrition_runtime.start`; MLServer has no setting for any of this), each doing one job:

- :class:`RepositoryLoopbackOnly`: the **management endpoints** (``/v2/repository/...``: load and unload
  models, unauthenticated in MLServer) answer 403 unless the client is on the pod's own loopback
  (``kubectl port-forward``, an exec shell).
- :class:`ReadinessKnowsWorker`: ``/v2/health/ready`` and ``/v2/models/<name>/ready`` answer 503 while
  no worker can score (``available()`` is false: between a worker's death and its replacement).
- :class:`BodyLimit`: a request body over ``max_body_bytes`` is refused with 413 before it is parsed: at
  once when its Content-Length says so, else as soon as the streamed bytes pass the limit (MLServer
  would read the whole body into memory and parse it, ~300 MiB of RSS for a 17 MB body).
- :class:`RetryAfter` on every 429 and 503, so that clients and gateways back off.
- :class:`FieldFirstErrors`: MLServer's worker plumbing prefixes every error from a worker with the
  exception's class path (``attrition_runtime.runtime.InvalidRequest: Age: ...``,
  mlserver/parallel/errors.py, no setting); REST answers lose that prefix here. gRPC answers keep it
  (MLServer builds them in its gRPC servicer, out of reach of an ASGI middleware).
- The bodies MLServer would turn into 500s (:mod:`attrition_runtime.bodies`): :class:`Decompress` and
  :class:`AcceptedMediaTypes`.

:class:`Guard` stacks them in that order (outermost first).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from attrition_runtime.asgi import ASGIApp, Message, Receive, Scope, Send, error, header
from attrition_runtime.bodies import AcceptedMediaTypes, Decompress

REPOSITORY_PREFIX = "/v2/repository"
#: What MLServer's WorkerError puts before the message of our runtime's errors.
WORKER_ERROR_PREFIX = re.compile(r'^(\{"error":\s*")attrition_runtime\.runtime\.\w+: ')
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
#: Seconds a client should wait before retrying a 429 or 503.
RETRY_AFTER_S = 1


class RepositoryLoopbackOnly:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = (scope.get("client") or ("",))[0]
        if scope["type"] == "http" and scope["path"].startswith(REPOSITORY_PREFIX) and client not in LOOPBACK:
            await error(send, 403, "the model repository API is only served to the pod's own loopback")
            return
        await self.app(scope, receive, send)


class ReadinessKnowsWorker:
    def __init__(self, app: ASGIApp, available: Callable[[], bool], retry_after: str):
        self.app, self.available, self.retry_after = app, available, retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/ready") and not self.available():
            await error(send, 503, "not ready: the scoring worker is being restarted", self.retry_after)
            return
        await self.app(scope, receive, send)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(send)
            return
        received, too_large = 0, False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Tell the app the client went away (it stops reading and parsing); we answer 413.
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def unless_too_large(message: Message) -> None:
            if not too_large:  # else the app's answer to a body it did not get whole: ours (413) goes
                await send(message)

        try:
            await self.app(scope, counting_receive, unless_too_large)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        await error(
            send,
            413,
            f"request body over the limit of {self.max_body_bytes} bytes (max_body_bytes); "
            "send fewer rows per request",
        )


class RetryAfter:
    def __init__(self, app: ASGIApp, retry_after: str):
        self.app, self.retry_after = app, retry_after.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_retry_after(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (429, 503):
                headers = message.get("headers", [])
                if not any(k.lower() == b"retry-after" for k, _ in headers):
                    message["headers"] = [*headers, (b"retry-after", self.retry_after)]
            await send(message)

        await self.app(scope, receive, with_retry_after if scope["type"] == "http" else send)


class FieldFirstErrors:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error_start: Message | None = None
        error_body = b""

        async def without_prefix(message: Message) -> None:
            nonlocal error_start, error_body
            if message["type"] == "http.response.start" and message["status"] >= 400:
                if any(k.lower() == b"content-encoding" for k, _ in message.get("headers", [])):
                    await send(message)  # compressed by MLServer's GZip middleware (long bodies): as it is
                    return
                error_start = message  # held until its (small) body is complete
                return
            if error_start is not None and message["type"] == "http.response.body":
                error_body += message.get("body", b"")
                if not message.get("more_body"):
                    await _send_rewritten(send, error_start, error_body)
                return
            await send(message)

        await self.app(scope, receive, without_prefix)


async def _send_rewritten(send: Send, start: Message, body: bytes) -> None:
    body = WORKER_ERROR_PREFIX.sub(r"\1", body.decode("utf-8", "replace")).encode()
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """The front door's middlewares in their order, as one (what start.py adds to MLServer's app)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        available: Callable[[], bool] = lambda: True,
        retry_after_s: int = RETRY_AFTER_S,
    ):
        retry_after = str(retry_after_s)
        inner = AcceptedMediaTypes(app)
        inner = Decompress(inner, max_body_bytes)
        inner = FieldFirstErrors(inner)
        inner = RetryAfter(inner, retry_after)
        inner = BodyLimit(inner, max_body_bytes)
        inner = ReadinessKnowsWorker(inner, available, retry_after)
        self.app = RepositoryLoopbackOnly(inner)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
