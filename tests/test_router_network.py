"""The router's upstream client (router/network.py) against a real TCP server in the test.

The server speaks just enough HTTP/1.1 to show what the relay relies on: kept-alive
connections are reused, but not once the agent closed them or they idled near vLLM's
keep-alive limit; 40 streams at once are not capped by the pool; a streamed answer arrives
piece by piece, a big answer whole; a closed stream closes the connection (how vLLM learns to
abort); nothing listening is a ConnectError.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from agent_manager.router import network
from agent_manager.router.answer import UpstreamResponse
from agent_manager.router.network import UpstreamClient
from tests.standin.process import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


@dataclass
class Server:
    port: int
    connections: int = 0
    closed_by_client: asyncio.Event = field(default_factory=asyncio.Event)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return await reader.readexactly(length)


def answer(body: bytes, *, close: bool = False) -> bytes:
    connection = b"close" if close else b"keep-alive"
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + b"content-length: %d\r\nconnection: %s\r\n\r\n" % (len(body), connection)
        + body
    )


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Server]:
    server = Server(free_port())

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        try:
            await handler(reader, writer, server)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(on_connection, "127.0.0.1", server.port)
    try:
        yield server
    finally:
        listener.close()


async def echo_forever(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
) -> None:
    while True:
        writer.write(answer(await read_request(reader)))
        await writer.drain()


@dataclass
class Answer:
    status_code: int
    content: bytes


async def post(client: UpstreamClient, port: int, body: bytes) -> Answer:
    response = await client.request("POST", f"http://127.0.0.1:{port}", "/v1/x", [], body)
    return Answer(response.status_code, await response.aread())


def test_kept_alive_connections_are_reused_and_bodies_arrive_whole() -> None:
    async def scenario() -> None:
        async with serving(echo_forever) as server:
            transport = UpstreamClient()
            bodies = [b'{"n": %d}' % n for n in range(20)]
            got = [await post(transport, server.port, body) for body in bodies]
            await transport.aclose()
        assert [r.content for r in got] == bodies
        assert {r.status_code for r in got} == {200}
        assert server.connections == 1

    asyncio.run(scenario())


def test_a_connection_idle_past_the_expiry_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM closes idle connections after 5 s; the router drops its own before that."""
    assert network.KEEPALIVE_EXPIRY_S < 5.0  # VLLM_HTTP_TIMEOUT_KEEP_ALIVE's default
    monkeypatch.setattr(network, "KEEPALIVE_EXPIRY_S", 0.2)

    async def scenario() -> None:
        async with serving(echo_forever) as server:
            transport = UpstreamClient()
            await post(transport, server.port, b"1")
            await post(transport, server.port, b"2")  # at once: the same connection
            await asyncio.sleep(0.4)
            await post(transport, server.port, b"3")
            await transport.aclose()
        assert server.connections == 2

    asyncio.run(scenario())


def test_a_big_answer_arrives_whole() -> None:
    big = bytes(range(256)) * 16384  # 4 MiB: past every buffer's high-water mark

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await read_request(reader)
        writer.write(answer(big))
        await writer.drain()
        await reader.read()

    async def scenario() -> None:
        async with serving(handler) as server:
            transport = UpstreamClient()
            response = await post(transport, server.port, big)
            await transport.aclose()
        assert response.content == big

    asyncio.run(scenario())


def test_a_connection_the_agent_closed_while_idle_is_not_reused() -> None:
    async def one_answer_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        writer.write(answer(await read_request(reader)))  # says keep-alive, then hangs up
        await writer.drain()

    async def scenario() -> None:
        async with serving(one_answer_then_close) as server:
            transport = UpstreamClient()
            first = await post(transport, server.port, b"1")
            await asyncio.sleep(0.2)  # the close reaches the client's socket
            second = await post(transport, server.port, b"2")
            await transport.aclose()
        assert (first.content, second.content) == (b"1", b"2")
        assert server.connections == 2

    asyncio.run(scenario())


def test_a_stream_arrives_piece_by_piece_and_closing_it_hangs_up() -> None:
    async def slow_stream(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await read_request(reader)

        async def watch() -> None:
            if await reader.read() == b"":  # vLLM's cue to abort the request
                server.closed_by_client.set()

        watcher = asyncio.ensure_future(watch())
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        writer.write(b"transfer-encoding: chunked\r\n\r\n")
        for n in range(100):
            if server.closed_by_client.is_set():
                break
            event = b"data: %d\n\n" % n
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            await asyncio.sleep(0.05)
        await watcher

    async def scenario() -> None:
        async with serving(slow_stream) as server:
            transport = UpstreamClient()
            loop = asyncio.get_running_loop()
            start = loop.time()
            url = f"http://127.0.0.1:{server.port}"
            response = await transport.request("POST", url, "/", [], b"{}")
            first = b""
            async for chunk in response.aiter_raw():
                first = chunk
                break
            first_after = loop.time() - start
            response.close()
            await asyncio.wait_for(server.closed_by_client.wait(), 3)
            await transport.aclose()
        assert first == b"data: 0\n\n"
        assert first_after < 1.0  # the whole stream takes 5 s: the first event did not wait

    asyncio.run(scenario())


def test_many_streams_at_once_each_get_a_connection() -> None:
    """vLLM batches concurrent requests: 40 open streams must not wait for a pool slot."""
    release = asyncio.Event()

    async def held_stream(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        writer.write(b"transfer-encoding: chunked\r\n\r\n6\r\ndata: \r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def scenario() -> None:
        async with serving(held_stream) as server:
            transport = UpstreamClient()

            async def open_stream() -> UpstreamResponse:
                url = f"http://127.0.0.1:{server.port}"
                return await transport.request("POST", url, "/", [], b"{}")

            opened = await asyncio.wait_for(asyncio.gather(*(open_stream() for _ in range(40))), 10)
            release.set()
            bodies = [await response.aread() for response in opened]
            await transport.aclose()
        assert bodies == [b"data: "] * 40
        assert server.connections == 40

    asyncio.run(scenario())


def test_nothing_listening_is_a_connect_error() -> None:
    async def scenario() -> None:
        transport = UpstreamClient()
        with pytest.raises(httpx.ConnectError):
            await post(transport, free_port(), b"{}")
        await transport.aclose()

    asyncio.run(scenario())


def test_an_agent_that_hangs_up_mid_answer_is_a_transport_error() -> None:
    async def half_answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await read_request(reader)
        writer.write(answer(b"x" * 1000)[:-500])
        await writer.drain()

    async def scenario() -> None:
        async with serving(half_answer) as server:
            transport = UpstreamClient()
            with pytest.raises(httpx.TransportError):
                await post(transport, server.port, b"{}")
            await transport.aclose()

    asyncio.run(scenario())


def test_header_bytes_outside_ascii_reach_the_agent_as_the_client_sent_them() -> None:
    heads: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        body = await reader.readexactly(2)
        writer.write(answer(body))
        await writer.drain()

    async def scenario() -> None:
        async with serving(record) as server:
            client = UpstreamClient()
            url = f"http://127.0.0.1:{server.port}"
            agent = b"caf\xc3\xa9 / \xe9"  # UTF-8 and a bare latin-1 byte: both obs-text
            response = await client.request("POST", url, "/v1/x", [(b"user-agent", agent)], b"{}")
            assert await response.aread() == b"{}"
            await client.aclose()

    asyncio.run(scenario())
    assert b"\r\nuser-agent: caf\xc3\xa9 / \xe9\r\n" in heads[0]
    assert heads[0].startswith(b"POST /v1/x HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"\r\ncontent-length: 2\r\n" in heads[0]


def test_a_header_value_with_a_line_break_is_never_sent() -> None:
    async def scenario() -> None:
        client = UpstreamClient()
        with pytest.raises(httpx.LocalProtocolError):
            headers = [(b"authorization", b"Bearer x\r\nx-admin: 1")]
            await client.request("POST", f"http://127.0.0.1:{free_port()}", "/", headers, b"")

    asyncio.run(scenario())


def test_a_body_that_ends_with_the_connection_arrives_whole() -> None:
    """An HTTP/1.0-style answer: no length, not chunked; the agent's close ends it."""

    async def until_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nfirst ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"second")
        await writer.drain()

    async def scenario() -> None:
        async with serving(until_close) as server:
            client = UpstreamClient()
            first = await post(client, server.port, b"{}")
            second = await post(client, server.port, b"{}")
            await client.aclose()
        assert first == second == Answer(200, b"first second")
        assert server.connections == 2  # a body ended by a close is never kept alive

    asyncio.run(scenario())


def test_a_request_cancelled_while_it_waits_for_the_answer_hangs_up() -> None:
    """How vLLM learns that nobody waits for the generation any more."""

    async def never_answers(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await read_request(reader)
        if await reader.read() == b"":
            server.closed_by_client.set()

    async def scenario() -> None:
        async with serving(never_answers) as server:
            client = UpstreamClient()
            waiting = asyncio.ensure_future(post(client, server.port, b"{}"))
            await asyncio.sleep(0.2)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await asyncio.wait_for(server.closed_by_client.wait(), 3)
            await client.aclose()

    asyncio.run(scenario())


def test_a_path_with_spaces_and_non_ascii_is_sent_percent_encoded() -> None:
    heads: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: Server) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer(b"{}"))
        await writer.drain()

    async def scenario() -> None:
        async with serving(record) as server:
            client = UpstreamClient()
            url = f"http://127.0.0.1:{server.port}"
            response = await client.request("GET", url, "/v1/responses/a b\u00e9?x=1", [])
            assert await response.aread() == b"{}"
            await client.aclose()

    asyncio.run(scenario())
    assert heads[0].startswith(b"GET /v1/responses/a%20b%C3%A9?x=1 HTTP/1.1\r\n")
    assert b"content-length" not in heads[0]  # a GET without a body says nothing of one


@pytest.mark.parametrize("streamed", [False, True])
def test_an_answer_is_handed_over_whole_and_a_stream_at_its_head(streamed: bool) -> None:
    """vLLM writes an answer's head and its body apart. The relay reads a plain answer whole,
    so `request` returns once the body is there too (one wake-up for the relay); a stream's
    head is handed over at once, before any event."""
    body_sent = asyncio.Event()
    go_on = asyncio.Event()

    async def head_then_body(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        await read_request(reader)
        kind = b"text/event-stream" if streamed else b"application/json"
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: 9\r\n\r\n" % kind)
        await writer.drain()
        await go_on.wait()
        writer.write(b"data: 0\n\n")
        await writer.drain()
        body_sent.set()
        await reader.read()

    async def scenario() -> None:
        async with serving(head_then_body) as server:
            client = UpstreamClient()
            url = f"http://127.0.0.1:{server.port}"
            request = asyncio.ensure_future(client.request("POST", url, "/", [], b"{}"))
            await asyncio.sleep(0.3)  # the head has long arrived
            returned_at_head = request.done()
            go_on.set()
            response = await asyncio.wait_for(request, 3)
            assert body_sent.is_set()
            assert await response.aread() == b"data: 0\n\n"
            await client.aclose()
        assert returned_at_head is streamed

    asyncio.run(scenario())
