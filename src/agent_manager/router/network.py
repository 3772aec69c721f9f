"""The router's upstream transport: httpx on httpcore's connection pool, over asyncio directly.

httpx's own transport reaches the socket through anyio: a cancel scope and a checkpoint around
every read and write, and a resume/pause of the socket's reading around each read that waits.
On a relay that is pure latency (~0.1-0.15 ms of CPU a request, scripts/bench_router.py), so
the router plugs a network backend on asyncio's own streams into httpcore's pool, through
httpcore's extension point (`AsyncNetworkBackend`), and hands httpx a transport through
httpx's (`AsyncBaseTransport`). HTTP itself (h11, keep-alive, the pool) stays httpcore's;
this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

KEEPALIVE_EXPIRY_S = 4.0


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection to an agent, as asyncio's own streams (buffering, flow control)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return await asyncio.wait_for(self._reader.read(max_bytes), timeout)
        except asyncio.TimeoutError:
            raise httpcore.ReadTimeout(f"no data within {timeout} s") from None
        except OSError as error:
            raise httpcore.ReadError(str(error) or type(error).__name__) from None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            await asyncio.wait_for(self._writer.drain(), timeout)
        except asyncio.TimeoutError:
            raise httpcore.WriteTimeout(f"could not send within {timeout} s") from None
        except (OSError, RuntimeError) as error:  # RuntimeError: written after close
            raise httpcore.WriteError(str(error) or type(error).__name__) from None

    async def aclose(self) -> None:
        self._writer.close()

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle kept-alive connection: has the agent closed it?
            return self._reader.at_eof() or _readable(self._writer.get_extra_info("socket"))
        return None  # all the pool asks besides: "ssl_object", and agents speak plain HTTP


def _readable(sock: socket.socket | None) -> bool:
    if sock is None or sock.fileno() < 0:
        return True
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([sock], [], [], 0)[0])
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=local), timeout
            )
        except asyncio.TimeoutError:
            message = f"{host}:{port} did not accept a connection within {timeout} s"
            raise httpcore.ConnectTimeout(message) from None
        except OSError as error:
            raise httpcore.ConnectError(str(error)) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextmanager
def _as_httpx() -> Iterator[None]:
    """httpcore's errors as httpx's, which the relay catches."""
    try:
        yield
    except Exception as error:
        for core, mapped in _ERRORS:
            if isinstance(error, core):
                raise mapped(str(error)) from error
        raise


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: httpcore.Response):
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx():
            async for chunk in self._response.aiter_stream():
                yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


class UpstreamTransport(httpx.AsyncBaseTransport):
    """httpx's transport interface on httpcore's pool with `AsyncioBackend` underneath."""

    def __init__(self) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=None,  # vLLM batches what it gets: the router must not cap it
            max_keepalive_connections=256,
            # vLLM's server closes a connection idle for 5 s: drop ours first, so that a
            # request is never sent on a connection the agent is closing.
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
            network_backend=AsyncioBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx():
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
