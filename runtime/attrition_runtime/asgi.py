"""What the REST middlewares share: the ASGI types, reading a whole body, and a JSON error answer. Plain
ASGI (no Starlette classes), so the middlewares work with whichever FastAPI and Starlette MLServer runs."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected (or a middleware outside said so) before its body was complete."""


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's value (``name`` in lower case), the first if repeated."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


def without_headers(scope: Scope, *names: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in scope.get("headers", ()) if k.lower() not in names]


async def read_body(receive: Receive) -> bytes:
    """The whole request body (the outer middleware bounds its size)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` in one message, then hands on to the connection's own (which
    says when the client disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def error(send: Send, status: int, message: str, retry_after: str | None = None) -> None:
    """An error answer as MLServer gives its own: ``{"error": "..."}``."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after:
        headers.append((b"retry-after", retry_after.encode()))
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
