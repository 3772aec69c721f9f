"""The router's HTTP/1.1 protocol: uvicorn's httptools protocol with a connection cap, a
deadline and a size cap on each request head, and what the relay finds in each request's
scope (scope_keys.py): a body already whole, a head joined with its body, the client's leaving.

uvicorn's own `limit_concurrency` answers 503 only once a head is complete, so connections
that never finish one would count against nothing: 600 half-sent heads held every file
descriptor. Head deadlines are checked by one sweep over the open connections (a few times
per `header_timeout_s`) rather than a timer armed and cancelled for every request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from agent_manager.router.joined_writes import JoinedWrites
from agent_manager.router.limits import ClientLimits
from agent_manager.router.scope_keys import BODY_COMPLETE, JOIN_HEAD, ON_CLIENT_GONE

LOG = logging.getLogger("agent_manager.router")
CAP_LOG_EVERY_S = 10.0  # one log line per burst of refused connections, not one per refusal
SWEEP_PERIOD_S = 1.0  # at most; a quarter of the head deadline when that is shorter
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
        self._joined: JoinedWrites | None = None
        # Called if the connection is lost during the current request (cleared after each
        # answer: uvicorn starts a pipelined request only once the one before has answered).
        self._gone_hooks: list[Callable[[], object]] = []
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport
            self._log_cap()
            transport.close()
            return
        super().connection_made(transport)
        self._joined = JoinedWrites(transport)
        self.transport = self._joined  # type: ignore[assignment]
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
        if self._joined is not None:
            scope: dict[str, Any] = self.scope  # type: ignore[assignment]
            scope[JOIN_HEAD] = self._joined.hold
            scope[ON_CLIENT_GONE] = self._gone_hooks.append

    def on_message_complete(self) -> None:
        self.scope[BODY_COMPLETE] = True  # type: ignore[literal-required]
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._gone_hooks.clear()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_deadline = 0.0
        if self not in self.connections:  # refused by the cap: nothing of uvicorn's to undo
            return
        super().connection_lost(exc)  # first: the request sees the disconnect, then the hooks
        hooks, self._gone_hooks = self._gone_hooks, []
        for hook in hooks:
            hook()

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
        return min(SWEEP_PERIOD_S, cls.limits.header_timeout_s / 4)

    @classmethod
    def _run_sweep(cls, connections: set[Any]) -> None:
        """Refuse the heads past their deadline; again after a period while connections stay."""
        now = time.monotonic()
        for connection in list(connections):
            if isinstance(connection, LimitedHttpToolsProtocol):
                deadline = connection._head_deadline
                if deadline and now >= deadline:
                    connection._refuse_head(TIMED_OUT)
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


def protocol_for(limits: ClientLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class uvicorn is given (`http=`), bound to this router's limits."""
    return type("RouterHttpProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})
