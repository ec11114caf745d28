"""Request bodies that MLServer would answer with a 500 are refused here with a 4xx that says why:

- :class:`Decompress`: a compressed body (``Content-Encoding: gzip`` or ``deflate``, as tritonclient's
  ``request_compression_algorithm`` sends them) is inflated here, at most to the body size limit (413
  past it). MLServer would inflate gzip without a bound, and a body that is not the gzip it claims would
  fail deep in FastAPI. Not gzip after all: 400; an encoding we do not speak: 415.
- :class:`AcceptedMediaTypes`: inference requests must be JSON, or the binary tensor extension
  (``Inference-Header-Content-Length``). FastAPI hands any other body to validation as raw bytes and
  then fails to echo them in its error (a 500 for bytes that are not UTF-8): 415 instead, naming the
  media types we accept.
"""

from __future__ import annotations

import re
import zlib

from attrition_runtime.asgi import (
    ASGIApp,
    ClientGone,
    Receive,
    Scope,
    Send,
    error,
    header,
    read_body,
    replay,
    without_headers,
)
from attrition_runtime.binary import BINARY_MEDIA_TYPE, HEADER_LENGTH

#: zlib's window bits for each Content-Encoding we inflate (gzip's header, or zlib's for deflate).
ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
#: The paths that take a V2 inference request body.
INFERENCE_PATH = re.compile(r"^/v2/models/[^/]+(/versions/[^/]+)?/(infer|generate)(_stream)?$")
JSON_MEDIA_TYPE = "application/json"


class Decompress:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        encoding = header(scope, b"content-encoding") if scope["type"] == "http" else None
        name = (encoding or b"").decode("latin-1").strip().lower()
        if name in ("", "identity"):
            await self.app(scope, receive, send)
            return
        if name not in ENCODINGS:
            await error(send, 415, f"Content-Encoding {name!r} not supported; expected gzip, deflate or none")
            return
        try:
            body = self.inflate(await read_body(receive), name)
        except ClientGone:
            return  # gone, or over the size limit (the body limit outside answers 413)
        except BodyTooLarge as failure:
            await error(send, 413, str(failure))
            return
        except (ValueError, zlib.error) as failure:
            await error(send, 400, f"body: Content-Encoding says {name} but the body is not ({failure})")
            return
        headers = without_headers(scope, b"content-encoding", b"content-length")
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        await self.app(scope, replay(body, receive), send)

    def inflate(self, body: bytes, name: str) -> bytes:
        inflater = zlib.decompressobj(ENCODINGS[name])
        inflated = inflater.decompress(body, self.max_body_bytes + 1)
        if len(inflated) > self.max_body_bytes:
            raise BodyTooLarge(
                f"request body over the limit of {self.max_body_bytes} bytes (max_body_bytes) once "
                f"inflated from {name}; send fewer rows per request",
            )
        if not inflater.eof:
            raise ValueError("the compressed data ends early")
        if inflater.unused_data:
            raise ValueError(f"{len(inflater.unused_data)} bytes after the end of the compressed data")
        return inflated


class BodyTooLarge(ValueError):
    """A body that inflates past the size limit (413)."""


class AcceptedMediaTypes:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and INFERENCE_PATH.match(scope["path"]):
            refusal = media_type_refusal(scope)
            if refusal:
                await error(send, 415, refusal)
                return
        await self.app(scope, receive, send)


def media_type_refusal(scope: Scope) -> str | None:
    """Why an inference request's Content-Type is not one we read (None: it is)."""
    value = (header(scope, b"content-type") or b"").decode("latin-1")
    media_type = value.split(";", 1)[0].strip().lower()
    binary = header(scope, HEADER_LENGTH.lower().encode()) is not None
    if not media_type or media_type == JSON_MEDIA_TYPE or media_type.endswith("+json"):
        return None
    if binary and media_type == BINARY_MEDIA_TYPE:
        return None
    return (
        f"Content-Type {value[:80]!r} not supported; expected {JSON_MEDIA_TYPE}, or {BINARY_MEDIA_TYPE} "
        f"with an {HEADER_LENGTH} header (the binary tensor data extension)"
    )
