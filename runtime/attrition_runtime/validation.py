"""FastAPI's answer to a body that fails validation, replaced: its handler echoes the body in the error,
and fails with a 500 when the body is bytes that are not UTF-8. This one names where the body is wrong,
never its values (they can be personal data): 400 for a body that is not JSON, else 422."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse


async def refuse_invalid_body(request: Request, failure: RequestValidationError) -> JSONResponse:
    errors = failure.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid", "type": ""}
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    malformed = first.get("type") == "json_invalid"
    message = f"{where}: {first.get('msg', 'invalid')}"
    if malformed:
        message = f"body: not valid JSON ({(first.get('ctx') or {}).get('error', first.get('msg'))})"
    return JSONResponse({"error": message}, status_code=400 if malformed else 422)
