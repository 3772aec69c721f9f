"""What one client may hold of the router: time to send its request head and body, idle time
between requests, connections at once, body bytes, JSON nesting.

Without these, 600 half-sent request heads held every file descriptor and locked everyone
out, and one 50 MB body cost 225 MB of memory. The head and connection limits live in the
HTTP protocol (`LimitedHttpToolsProtocol`, handed to uvicorn), where the bytes arrive; the body
limits where the body is read (`read_body`), before any JSON is parsed or any key looked up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LOG = logging.getLogger("agent_manager.router")
MIB = 1024 * 1024
CAP_LOG_EVERY_S = 10.0  # one log line per burst of refused connections, not one per refusal


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


async def read_body(
    receive: Receive, headers: list[tuple[bytes, bytes]], limits: ClientLimits
) -> bytes | None:
    """The whole body, or None if the client left first; BodyRefused past a limit. A declared
    Content-Length over the limit is refused before a byte of the body is read."""
    declared = dict(headers).get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise BodyRefused(413, _too_large(limits))
    try:
        # One deadline for the whole body (no task per chunk where asyncio.timeout exists).
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(limits.body_timeout_s):
                return await _read(receive, limits)
        return await asyncio.wait_for(_read(receive, limits), limits.body_timeout_s)
    except asyncio.TimeoutError:
        message = f"The request body did not arrive within {limits.body_timeout_s:g} s."
        raise BodyRefused(408, message) from None


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


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a connection cap, a deadline and a size cap on each
    request head. (uvicorn's own `limit_concurrency` answers 503 only once a head is complete,
    so connections that never finish one are not counted against anything.)"""

    limits = ClientLimits()
    _last_cap_log = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport
            self._log_cap()
            transport.close()
            return
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            # A new request head is arriving (the first, or the next on a kept-alive
            # connection, where uvicorn's idle timer stops at its first byte).
            if self._head_timer is None:
                self._arm_head_timer()
            end = data.find(b"\r\n\r\n")  # the body that may follow is not the head's
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > self.limits.header_max_bytes:
                self._refuse_head(b"431 Request Header Fields Too Large")
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._head_bytes = 0
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self not in self.connections:  # refused by the cap: nothing of uvicorn's to undo
            return
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(
            self.limits.header_timeout_s, self._refuse_head, b"408 Request Timeout"
        )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse_head(self, status: bytes) -> None:
        self._cancel_head_timer()
        if self.transport.is_closing():
            return
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
        )
        self.transport.close()

    def _log_cap(self) -> None:
        now = time.monotonic()
        cls = type(self)
        if now - cls._last_cap_log >= CAP_LOG_EVERY_S:
            cls._last_cap_log = now
            LOG.warning(
                "connection limit reached (%d open, --max-connections): new connections are "
                "closed until some end",
                len(self.connections),
            )


def protocol_for(limits: ClientLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class uvicorn is given (`http=`), bound to this router's limits."""
    return type("RouterHttpProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})
