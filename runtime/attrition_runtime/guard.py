"""The REST front door, as an ASGI middleware in MLServer's main process (added by
:mod:`attrition_runtime.start`; MLServer has no setting for any of this):

- **Body size**: a request body over ``max_body_bytes`` is refused with 413 before it is parsed:
  at once when its Content-Length says so, else as soon as the streamed bytes pass the limit (MLServer
  would read the whole body into memory and parse it, ~300 MiB of RSS for a 17 MB body).
- **Management endpoints** (``/v2/repository/...``: load and unload models, unauthenticated in MLServer)
  answer 403 unless the client is on the pod's own loopback (``kubectl port-forward``, an exec shell).
- **Readiness that knows the worker**: ``/v2/health/ready`` and ``/v2/models/<name>/ready`` answer 503
  while no worker can score (``available()`` is false: between a worker's death and its replacement).
- **Retry-After** on every 429 and 503, so that clients and gateways back off.
- **Error messages that start with the field.** MLServer's worker plumbing prefixes every error from a
  worker with the exception's class path (``attrition_runtime.runtime.InvalidRequest: Age: ...``,
  mlserver/parallel/errors.py, no setting); REST answers lose that prefix here. gRPC answers keep it
  (MLServer builds them in its gRPC servicer, out of reach of an ASGI middleware).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REPOSITORY_PREFIX = "/v2/repository"
#: What MLServer's WorkerError puts before the message of our runtime's errors.
WORKER_ERROR_PREFIX = re.compile(r'^(\{"error":\s*")attrition_runtime\.runtime\.\w+: ')
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
#: Seconds a client should wait before retrying a 429 or 503.
RETRY_AFTER_S = 1


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        available: Callable[[], bool] = lambda: True,
        retry_after_s: int = RETRY_AFTER_S,
    ):
        self.app, self.max_body_bytes, self.retry_after = app, max_body_bytes, str(retry_after_s)
        self.available = available

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(REPOSITORY_PREFIX) and (scope.get("client") or ("",))[0] not in LOOPBACK:
            await _error(send, 403, "the model repository API is only served to the pod's own loopback")
            return
        if scope["path"].endswith("/ready") and not self.available():
            await _error(send, 503, "not ready: the scoring worker is being restarted", self.retry_after)
            return
        length = dict(scope["headers"]).get(b"content-length")
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

        error_start: Message | None = None
        error_body = b""

        async def send_with_retry_after(message: Message) -> None:
            nonlocal error_start, error_body
            if too_large:
                return  # the app's answer to a body it did not get whole: ours (413) goes instead
            if message["type"] == "http.response.start" and message["status"] >= 400:
                if message["status"] in (429, 503):
                    retry = (b"retry-after", self.retry_after.encode())
                    message["headers"] = [*message.get("headers", []), retry]
                if any(k.lower() == b"content-encoding" for k, _ in message.get("headers", [])):
                    await send(message)  # compressed by MLServer's GZip middleware (long bodies): as it is
                    return
                error_start = message  # held until its (small) body is complete
                return
            if error_start is not None and message["type"] == "http.response.body":
                error_body += message.get("body", b"")
                if message.get("more_body"):
                    return
                body = WORKER_ERROR_PREFIX.sub(r"\1", error_body.decode("utf-8", "replace")).encode()
                headers = [
                    (k, v) for k, v in error_start.get("headers", []) if k.lower() != b"content-length"
                ]
                length = (b"content-length", str(len(body)).encode())
                await send({**error_start, "headers": [*headers, length]})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        try:
            await self.app(scope, counting_receive, send_with_retry_after)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        await _error(
            send,
            413,
            f"request body over the limit of {self.max_body_bytes} bytes (max_body_bytes); "
            "send fewer rows per request",
        )


async def _error(send: Send, status: int, message: str, retry_after: str | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after:
        headers.append((b"retry-after", retry_after.encode()))
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
