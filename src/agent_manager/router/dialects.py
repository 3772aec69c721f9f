"""The router's own answers in the caller's dialect: OpenAI's error shape everywhere, and
Anthropic's on `/v1/messages*` (what the `anthropic` SDK parses), as vLLM 0.33 answers them.

Streams the router has to end get a last error event: OpenAI's followed by `data: [DONE]`
(clients stop reading there), Anthropic's as an `event: error`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Dialect = Literal["openai", "anthropic"]
OPENAI: Dialect = "openai"
ANTHROPIC: Dialect = "anthropic"
ANTHROPIC_PREFIX = "/v1/messages"

# vLLM 0.33's translation (vllm/entrypoints/anthropic/protocol.py): Anthropic SDKs dispatch
# on `error.type`, which must be one of Anthropic's own words.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def dialect_of(path: str) -> Dialect:
    return ANTHROPIC if path.startswith(ANTHROPIC_PREFIX) else OPENAI


def anthropic_type(status: int) -> str:
    return _ANTHROPIC_TYPES.get(status) or (
        "api_error" if status >= 500 else "invalid_request_error"
    )


def error_body(
    status: int,
    message: str,
    kind: str,
    param: str | None = None,
    dialect: Dialect = OPENAI,
) -> dict[str, Any]:
    if dialect == ANTHROPIC:
        return {"type": "error", "error": {"type": anthropic_type(status), "message": message}}
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


def error_response(
    status: int,
    message: str,
    kind: str,
    retry_after: float | None = None,
    *,
    param: str | None = None,
    dialect: Dialect = OPENAI,
) -> Response:
    headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else None
    body = error_body(status, message, kind, param, dialect)
    return JSONResponse(body, status_code=status, headers=headers)


def sse_error(status: int, message: str, dialect: Dialect = OPENAI) -> bytes:
    """The last event of a stream the router had to end."""
    kind = "ServiceUnavailableError" if status == 503 else "BadGatewayError"
    data = json.dumps(error_body(status, message, kind, None, dialect))
    if dialect == ANTHROPIC:
        return f"event: error\ndata: {data}\n\n".encode()
    return f"data: {data}\n\ndata: [DONE]\n\n".encode()


async def no_route(request: Request, error: Exception) -> Response:
    """Starlette's 404 and 405 as JSON in the caller's dialect (its own are plain text)."""
    status = error.status_code if isinstance(error, HTTPException) else 500
    path = request.url.path
    message = (
        f"The router has no route {request.method} {path}; see docs/router.md."
        if status == 404
        else f"{request.method} is not allowed on {path}."
    )
    kind = "NotFoundError" if status == 404 else "MethodNotAllowedError"
    return error_response(status, message, kind, dialect=dialect_of(path))
