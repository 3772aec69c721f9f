"""A relayed answer's head and body in one write to the client.

uvicorn writes a response's head as soon as the app sends `http.response.start`, and its body
on the next message: two writes, and with TCP_NODELAY two segments the client wakes up for.
`JoinedWrites` wraps a connection's transport; the protocol puts its `hold` in each
request's scope (scope_keys.JOIN_HEAD). An app about to send a head and its whole body back to
back (the relay, for an answer it has read whole) calls it first: the next write (the head)
then waits and goes out with the one after it (the body). Nothing else is held, so a
stream's head is never kept from a client waiting for its first token.
"""

from __future__ import annotations

import asyncio
from typing import Any


class JoinedWrites:
    """The transport uvicorn writes to; everything but writing and closing passes through."""

    __slots__ = ("_transport", "_held", "_holding")

    def __init__(self, transport: asyncio.Transport):
        self._transport = transport
        self._held: bytes | None = None
        self._holding = False

    def hold(self) -> None:
        """Hold the next write until the one after it (or until the connection closes)."""
        self._holding = True

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif self._holding:
            self._holding = False
            self._held = data
        else:
            self._transport.write(data)

    def close(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
