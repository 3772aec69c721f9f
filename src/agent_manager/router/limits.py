"""What one client may hold of the router: time to send its request head and body, idle time
between requests, connections at once, body bytes, JSON nesting.

Without these, 600 half-sent request heads held every file descriptor and locked everyone
out, and one 50 MB body cost 225 MB of memory. The head and connection limits live in the
HTTP protocol (protocol.py, handed to uvicorn), where the bytes arrive; the body limits where
the body is read (`read_body`), before any JSON is parsed or any key looked up.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope

from agent_manager.router.scope_keys import BODY_COMPLETE, BODY_LATE

MIB = 1024 * 1024


@dataclass(frozen=True)
class ClientLimits:
    header_timeout_s: float = 10.0  # from a request's first byte to the end of its head
    header_max_bytes: int = 64 * 1024
    body_timeout_s: float = 60.0  # from the end of the head to the end of the body
    keepalive_s: float = 5.0  # an idle kept-alive connection is closed after this
    max_connections: int = 1000  # below the usual 1024 file descriptors, so the router lives
    max_body_bytes: int = 32 * MIB  # a long prompt with images fits; more is 413


class BodyRefused(Exception):
    """A request body the router answers itself (413, 408 or 400), in OpenAI's shape."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(receive: Receive, scope: Scope, limits: ClientLimits) -> bytes | None:
    """The whole body, or None if the client left first; BodyRefused past a limit. A declared
    Content-Length over the limit is refused before a byte of the body is read."""
    if scope.get(BODY_COMPLETE):
        return await _read(receive, limits)  # all there: nothing to wait for
    if scope.get(BODY_LATE):
        raise BodyRefused(408, _late(limits))
    declared = dict(scope["headers"]).get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise BodyRefused(413, _too_large(limits))
    try:
        # One deadline for the whole body (no task per chunk where asyncio.timeout exists).
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(limits.body_timeout_s):
                return await _read(receive, limits)
        return await asyncio.wait_for(_read(receive, limits), limits.body_timeout_s)
    except asyncio.TimeoutError:
        raise BodyRefused(408, _late(limits)) from None


def _late(limits: ClientLimits) -> str:
    return f"The request body did not arrive within {limits.body_timeout_s:g} s."


async def _read(receive: Receive, limits: ClientLimits) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise BodyRefused(413, _too_large(limits))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limits: ClientLimits) -> str:
    return (
        f"The request body is larger than the router's limit of "
        f"{limits.max_body_bytes / MIB:g} MiB (--max-body)."
    )


def parse_json(body: bytes) -> Any:
    """The body as JSON; BodyRefused(400) when it is not JSON or nests deeper than the parser
    goes (a 100 000-deep array is a RecursionError in `json`, never a 500)."""
    try:
        return json.loads(body)
    except RecursionError:
        raise BodyRefused(400, "The body's JSON is nested too deeply.") from None
    except ValueError:
        return None
