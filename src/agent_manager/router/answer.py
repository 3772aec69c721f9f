"""An agent's answer as the router's upstream client (network.py) reads it: status and
headers, then the body, handed on as it arrives (a stream) or whole (anything else), with
reading paused while a slow client leaves too much of it unsent."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Protocol

import httpx

READ_HIGH_WATER = 256 * 1024  # stop reading the agent while a slow client has this much unsent


class Link(Protocol):
    """What an answer needs of the connection it arrives on (network._Connection)."""

    loop: asyncio.AbstractEventLoop

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def hang_up(self) -> None: ...

    def done(self, keep_alive: bool) -> None: ...


class UpstreamResponse:
    """The agent's answer: status and headers (names lower-case), then the body. Read it to
    its end (`aiter_raw`, `aread`) and the connection goes back to the pool; `close()` before
    that closes the connection, which is how vLLM learns to abort the request."""

    def __init__(self, connection: Link):
        self._connection: Link | None = connection
        self._loop = connection.loop
        self.status_code = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._head_done = False
        self._until_close = True  # no length, not chunked: the body ends when the agent closes
        self._keep_alive = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._done = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        # A stream is woken for its head and every piece; any other answer (read whole by the
        # relay) once, when it is complete (or has filled the read buffer): the agent writes
        # head and body apart, and a wake-up costs a relay more than the bytes do.
        self._eager = False

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives (what arrived together comes as one piece)."""
        chunks = self._chunks
        while True:
            if chunks:
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._buffered = 0
                if self._paused and self._connection is not None:
                    self._paused = False
                    self._connection.resume_reading()
                yield data
            elif self._done:
                self._release()
                return
            elif self._error is not None:
                self.close()
                raise self._error
            else:
                await self._wait()

    async def aread(self) -> bytes:
        if self._done:  # the usual case: `request` returned the answer whole
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._release()
            return data
        return b"".join([chunk async for chunk in self.aiter_raw()])

    def close(self) -> None:
        """Give the connection back if the answer was read whole, else hang up."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.hang_up()

    async def _wait(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _ready(self) -> bool:
        """What `request` waits for: the head of a stream, any other answer whole (or as much
        of it as the read buffer holds)."""
        return self._head_done and (self._eager or self._done or self._paused)

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.done(self._keep_alive)

    # What the connection's parser calls.

    def _on_head(self, status: int, keep_alive: bool) -> None:
        self.status_code = status
        self._keep_alive = keep_alive
        for name, value in self.headers:
            if name == b"content-length" or (
                name == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                self._until_close = False
            elif name == b"content-type" and value.startswith(b"text/event-stream"):
                self._eager = True
        self._head_done = True
        if self._eager:
            self._wake()

    def _on_body(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > READ_HIGH_WATER and not self._paused and self._connection:
            self._paused = True
            self._connection.pause_reading()
            self._wake()
        elif self._eager:
            self._wake()

    def _on_complete(self) -> None:
        self._done = True
        self._wake()

    def _on_lost(self, error: Exception | None) -> None:
        if self._done or self._error is not None:
            return
        if self._head_done and self._until_close and error is None:
            self._keep_alive = False
            self._done = True  # an HTTP/1.0-style body: the close is its end
        elif not self._head_done:
            self._error = httpx.RemoteProtocolError(
                "Server disconnected without sending a response."
            )
        else:
            self._error = httpx.ReadError("the agent closed the connection mid-answer")
        self._wake()

    def _on_error(self, error: Exception) -> None:
        if not self._done and self._error is None:
            self._error = error
            self._wake()
