"""The router's HTTP/1.1 protocol: uvicorn's httptools protocol with a connection cap, a
deadline and a size cap on each request head, and what the relay finds in each request's
scope (scope_keys.py): a body already whole, a whole answer in one write, the client leaving.

uvicorn's own `limit_concurrency` answers 503 only once a head is complete, so connections
that never finish one would count against nothing: 600 half-sent heads held every file
descriptor. Head deadlines are checked by one sweep over the open connections (a few times
per deadline) rather than a timer armed and cancelled for every request.

A request whose small body (up to uvicorn's read buffer) has not all arrived with its head
(the `openai` SDK's httpx writes the two apart) reaches the app only once it is whole: one
turn of the app instead of a start, a wait for the body under a deadline and a resumption.
The body deadline is the sweep's too; past it the app starts with BODY_LATE and answers 408.

It overrides uvicorn's HttpToolsProtocol (0.45 and later: `_start_asgi_task`) and writes a
whole answer the way its RequestResponseCycle.send does; tests/test_router_protocol.py pins
what that relies on.
"""

from __future__ import annotations

import asyncio
import functools
import http
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from agent_manager.router.limits import ClientLimits
from agent_manager.router.scope_keys import BODY_COMPLETE, BODY_LATE, ON_CLIENT_GONE, RESPOND

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application

LOG = logging.getLogger("agent_manager.router")
CAP_LOG_EVERY_S = 10.0  # one log line per burst of refused connections, not one per refusal
SWEEP_PERIOD_S = 1.0  # at most; a quarter of the shorter deadline when that is less
TIMED_OUT = b"408 Request Timeout"


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """One client connection (uvicorn makes one per connection, from the class `protocol_for`
    binds to a router's limits)."""

    limits = ClientLimits()
    _last_cap_log = 0.0
    _sweep: asyncio.TimerHandle | None = None  # per class, so per router
    _sweep_loop: asyncio.AbstractEventLoop | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_deadline = 0.0  # 0: no request head is arriving
        self._head_bytes = 0
        self._held: tuple[RequestResponseCycle, ASGI3Application] | None = None  # body due
        self._body_deadline = 0.0
        # Called if the connection is lost during the current request (cleared after each
        # answer: uvicorn starts a pipelined request only once the one before has answered).
        self._gone_hooks: list[Callable[[], object]] = []
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport
            self._log_cap()
            transport.close()
            return
        super().connection_made(transport)
        self._head_deadline = time.monotonic() + self.limits.header_timeout_s
        self._ensure_sweep()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            # A new request head is arriving (the first, or the next on a kept-alive
            # connection, where uvicorn's idle timer stops at its first byte).
            if not self._head_deadline:
                self._head_deadline = time.monotonic() + self.limits.header_timeout_s
            end = data.find(b"\r\n\r\n")  # the body that may follow is not the head's
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > self.limits.header_max_bytes:
                self._refuse_head(b"431 Request Header Fields Too Large")
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head_deadline = 0.0
        self._head_bytes = 0
        super().on_headers_complete()
        scope: dict[str, Any] = self.scope  # type: ignore[assignment]
        scope[RESPOND] = functools.partial(self._respond, self.cycle)
        scope[ON_CLIENT_GONE] = self._gone_hooks.append

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        if (
            cycle is self.cycle
            and cycle.more_body
            and not self.expect_100_continue  # the client waits for "100 Continue" first
            and 0 < _declared_length(self.headers) <= HIGH_WATER_LIMIT
        ):
            self._held = (cycle, app)  # started by on_message_complete, or the sweep
            self._body_deadline = time.monotonic() + self.limits.body_timeout_s
            return
        super()._start_asgi_task(cycle, app)

    def on_message_complete(self) -> None:
        self.scope[BODY_COMPLETE] = True  # type: ignore[literal-required]
        super().on_message_complete()
        self._start_held()

    def _start_held(self) -> None:
        held, self._held = self._held, None
        self._body_deadline = 0.0
        if held is not None and not held[0].disconnected:
            super()._start_asgi_task(*held)

    def on_response_complete(self) -> None:
        self._gone_hooks.clear()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_deadline = self._body_deadline = 0.0
        self._held = None
        if self not in self.connections:  # refused by the cap: nothing of uvicorn's to undo
            return
        super().connection_lost(exc)  # first: the request sees the disconnect, then the hooks
        hooks, self._gone_hooks = self._gone_hooks, []
        for hook in hooks:
            hook()

    def _respond(
        self,
        cycle: RequestResponseCycle,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        """`scope[RESPOND]`: what uvicorn's `send` does for a head and then a whole body, in
        one write. `headers` must not carry content-length or connection: this adds them."""
        if cycle.disconnected:
            return  # as uvicorn's send: nobody to answer
        if cycle.response_started:
            raise RuntimeError("respond() after the response started")
        cycle.response_started = cycle.response_complete = True
        head = [_status_line(status)]
        for name, value in (*cycle.default_headers, *headers):
            head += (name, b": ", value, b"\r\n")
        head.append(b"content-length: %d\r\n" % len(body))
        if not cycle.keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        self.transport.writelines((b"".join(head), body))
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        cycle.on_response()

    def _refuse_head(self, status: bytes) -> None:
        self._head_deadline = 0.0
        if self.transport.is_closing():
            return
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
        )
        self.transport.close()

    def _ensure_sweep(self) -> None:
        cls = type(self)
        if cls._sweep is None or cls._sweep_loop is not self.loop:
            cls._sweep_loop = self.loop
            cls._sweep = self.loop.call_later(cls._period(), cls._run_sweep, self.connections)

    @classmethod
    def _period(cls) -> float:
        return min(SWEEP_PERIOD_S, cls.limits.header_timeout_s / 4, cls.limits.body_timeout_s / 4)

    @classmethod
    def _run_sweep(cls, connections: set[Any]) -> None:
        """Refuse the heads past their deadline; again after a period while connections stay."""
        now = time.monotonic()
        for connection in list(connections):
            if isinstance(connection, LimitedHttpToolsProtocol):
                deadline = connection._head_deadline
                if deadline and now >= deadline:
                    connection._refuse_head(TIMED_OUT)
                late = connection._body_deadline
                if late and now >= late and connection._held is not None:
                    connection._held[0].scope[BODY_LATE] = True  # type: ignore[literal-required]
                    connection._start_held()
        if connections and cls._sweep_loop is not None:
            cls._sweep = cls._sweep_loop.call_later(cls._period(), cls._run_sweep, connections)
        else:
            cls._sweep = None

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


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    """The request's Content-Length (-1 without one, or chunked)."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return -1


@functools.lru_cache(maxsize=64)
def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase)


def protocol_for(limits: ClientLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class uvicorn is given (`http=`), bound to this router's limits."""
    return type("RouterHttpProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})
