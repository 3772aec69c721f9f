"""The router's upstream HTTP/1.1 client: httptools' C response parser on asyncio's own
transports, with a keep-alive pool per agent.

httpx on httpcore parsed every answer with h11 (pure Python) and took anyio locks, cancel
scopes and checkpoints around each step: about a third of the router's CPU per request
(scripts/bench_router.py, py-spy). A relay needs little of it: one request per connection at a
time, the request written in one piece (head and body together), the answer's head, its body
piece by piece as the agent sends it, and the connection back to the pool once the answer has
been read to its end. Errors are httpx's exception classes, which the relay catches.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import time

import httptools
import httpx

from agent_manager.router.answer import UpstreamResponse

KEEPALIVE_EXPIRY_S = 4.0  # below vLLM's 5 s (VLLM_HTTP_TIMEOUT_KEEP_ALIVE)
CONNECT_TIMEOUT_S = 5.0  # nothing listens: fail fast. No read timeout: a long generation is fine
MAX_IDLE_PER_AGENT = 256


class _Connection(asyncio.Protocol):
    """One TCP connection to an agent, carrying one request at a time."""

    def __init__(self, pool: UpstreamClient, key: tuple[str, int], loop: asyncio.AbstractEventLoop):
        self._pool = pool
        self.key = key
        self.loop = loop  # (asyncio.get_running_loop() asks the OS for its pid every time)
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: UpstreamResponse | None = None
        self.closed = False
        self.idle_since = 0.0

    def send(self, data: bytes, response: UpstreamResponse) -> None:
        self.response = response
        assert self.transport is not None
        self.transport.write(data)

    def done(self, keep_alive: bool) -> None:
        self.response = None
        if keep_alive and not self.closed:
            self._pool.put(self)
        else:
            self.hang_up()

    def hang_up(self) -> None:
        self.response = None
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP transport

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes nobody asked for, on an idle connection: never reuse it
            self.hang_up()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            response._on_error(httpx.RemoteProtocolError(f"the agent's answer: {error}"))
            self.hang_up()

    def eof_received(self) -> bool | None:
        self.closed = True
        if self.response is not None:
            self.response._on_lost(None)
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.response is not None:
            if exc is None:
                self.response._on_lost(None)
            else:
                self.response._on_error(httpx.ReadError(str(exc) or type(exc).__name__))

    # httptools' callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self.response is not None:
            status = self.parser.get_status_code()
            self.response._on_head(status, self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._on_body(body)

    def on_message_complete(self) -> None:
        if self.response is not None:
            self.response._on_complete()


class UpstreamClient:
    """Requests to agents over kept-alive connections (no cap on connections: vLLM batches
    what it gets, the router must not hold requests back)."""

    def __init__(self) -> None:
        # vLLM closes a connection idle for 5 s: drop ours first, so that a request is never
        # sent on a connection the agent is closing.
        self.keepalive_expiry_s = KEEPALIVE_EXPIRY_S
        self._idle: dict[tuple[str, int], list[_Connection]] = {}

    async def request(
        self,
        method: str,
        base: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
    ) -> UpstreamResponse:
        """Send `method base+path` with `headers` (names lower-case, values as bytes, sent as
        they are) and `body`; returns once a stream's head has arrived, or any other answer
        whole (or as much as the read buffer holds: read the rest with `aread`)."""
        host, port, authority = _address(base)
        target = _request_target(path)
        head = [b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (method.encode(), target, authority)]
        for name, value in headers:
            if b"\r" in value or b"\n" in value or b"\0" in value:
                raise httpx.LocalProtocolError(f"Illegal header value for {name.decode()}")
            head.append(b"%s: %s\r\n" % (name, value))
        if body or method != "GET":
            head.append(b"content-length: %d\r\n" % len(body))
        head.append(b"\r\n")
        head.append(body)
        connection = self._take((host, port)) or await self._connect(host, port)
        response = UpstreamResponse(connection)
        connection.send(b"".join(head), response)
        try:
            while not response._ready():
                if response._error is not None:
                    raise response._error
                await response._wait()
        except BaseException:
            response.close()  # cancelled, or the agent hung up: this connection is done
            raise
        return response

    def put(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.key, [])
        if len(idle) >= MAX_IDLE_PER_AGENT:
            connection.hang_up()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.hang_up()
        self._idle.clear()

    def _take(self, key: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recent: the least likely to be expiring
            transport = connection.transport
            if (
                not connection.closed
                and transport is not None
                and not transport.is_closing()
                and now - connection.idle_since < self.keepalive_expiry_s
            ):
                return connection
            connection.hang_up()
        return None

    async def _connect(self, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        key = (host, port)
        try:
            transport, connection = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self, key, loop), host, port),
                CONNECT_TIMEOUT_S,
            )
        except asyncio.TimeoutError:
            message = f"{host}:{port} did not accept a connection within {CONNECT_TIMEOUT_S:g} s"
            raise httpx.ConnectTimeout(message) from None
        except OSError as error:
            raise httpx.ConnectError(str(error) or type(error).__name__) from None
        connection.transport = transport  # uvloop may call connection_made after this
        sock = transport.get_extra_info("socket")
        if sock is not None:  # the request's one write must not wait for a delayed ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection


@functools.lru_cache(maxsize=256)
def _address(base: str) -> tuple[str, int, bytes]:
    """host, port and the Host header of an agent's `http://host:port` (httpx.InvalidURL if
    it is none)."""
    url = httpx.URL(base)
    if url.scheme != "http" or not url.host:
        raise httpx.UnsupportedProtocol(f"Agents speak plain HTTP, not {base!r}.")
    port = url.port or 80
    return url.host, port, url.netloc


@functools.lru_cache(maxsize=1024)
def _request_target(path: str) -> bytes:
    """The path (and query) as a request line carries it: percent-encoded as httpx would."""
    return httpx.URL("http://agent" + path).raw_path
