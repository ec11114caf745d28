"""The binary tensor data extension on MLServer's REST server, as an ASGI middleware next to its routes.

MLServer's REST route parses every body as JSON (a binary body is a 500 there). This middleware takes
the inference requests that use the extension (an ``Inference-Header-Content-Length`` header, or JSON
that asks for binary outputs), decodes their binary tensors straight into numpy arrays
(:mod:`attrition_runtime.binary`), and hands the :class:`InferenceRequest` to MLServer's data plane, as
MLServer's own route does: the same model registry, worker pool, metrics and errors; the arrays reach the
worker pickled, and the runtime scores them as they are. Its answer goes back as JSON or, where asked,
with binary outputs and the extension's header. Every other request goes to MLServer's route untouched.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

import orjson
from mlserver.codecs.json import encode_to_json_bytes
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse
from pydantic import ValidationError

from attrition_runtime import binary
from attrition_runtime.asgi import ASGIApp, ClientGone, Receive, Scope, Send, error, header, read_body, replay

Infer = Callable[[InferenceRequest, str, str | None], Awaitable[InferenceResponse]]
INFER_PATH = re.compile(r"^/v2/models/(?P<name>[^/]+)(/versions/(?P<version>[^/]+))?/infer$")
_HEADER_LENGTH = binary.HEADER_LENGTH.lower().encode()
#: In a JSON body, the parameters that ask for binary outputs (a body without either skips the parse).
_ASKS_BINARY = b'"binary_data'


class BinaryTensors:
    def __init__(self, app: ASGIApp, infer: Infer):
        self.app, self.infer = app, infer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = INFER_PATH.match(scope["path"]) if scope["type"] == "http" else None
        if path is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(receive)
        except ClientGone:
            return
        length = header(scope, _HEADER_LENGTH)
        if length is None and _ASKS_BINARY not in body:
            await self.app(scope, replay(body, receive), send)
            return
        try:
            content, header_length = await self.answer(body, length, path["name"], path["version"])
        except binary.MalformedBody as failure:
            await error(send, 400, str(failure))
            return
        except ValidationError as failure:
            await error(send, 400, _first_error(failure))
            return
        except MLServerError as failure:  # what MLServer's exception handler would answer
            await error(send, failure.status_code, str(failure))
            return
        await _send_answer(send, content, header_length)

    async def answer(self, body: bytes, length: bytes | None, name: str, version: str | None):
        """The response body and its JSON header's length (None: JSON only)."""
        if length is None:
            parsed, arrays = _json(body), {}
        else:
            parsed, rest = binary.split(body, binary.header_length(length.decode("latin-1"), len(body)))
            arrays = binary.take_inputs(parsed, rest)
        every, each = binary.wants_binary(parsed)
        request = _request(parsed, arrays)
        response = await self.infer(request, unquote(name), unquote(version) if version else None)
        dumped = response.model_dump(exclude_unset=True, exclude_none=True)
        return binary.encode_response(dumped, every, each, encode_to_json_bytes)


def _json(body: bytes) -> dict:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as failure:
        raise binary.MalformedBody(f"body: not valid JSON ({failure})") from None
    if not isinstance(parsed, dict):
        raise binary.MalformedBody(f"body: a JSON {type(parsed).__name__}; expected an object")
    return parsed


def _request(parsed: dict, arrays: dict) -> InferenceRequest:
    """The V2 request, its binary inputs' data the decoded arrays themselves: validated with empty data
    (pydantic would try each type of its union on an array: twice the time), then put in."""
    for index in arrays:
        parsed["inputs"][index]["data"] = []
    request = InferenceRequest.model_validate(parsed)
    for index, values in arrays.items():
        request.inputs[index].data.root = values
    return request


def _first_error(failure: ValidationError) -> str:
    """The first thing wrong, named by where it is (never the value: it can be personal data)."""
    first = failure.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


async def _send_answer(send: Send, content: bytes, header_length: int | None) -> None:
    headers = [(b"content-length", str(len(content)).encode())]
    if header_length is None:
        headers.append((b"content-type", b"application/json"))
    else:
        headers.append((b"content-type", binary.BINARY_MEDIA_TYPE.encode()))
        headers.append((_HEADER_LENGTH, str(header_length).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": content})
