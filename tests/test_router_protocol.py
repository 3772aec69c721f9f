"""The router's HTTP protocol as `serve` runs it (protocol.py: uvicorn's own protocol, on a
recording transport): a relayed answer leaves in one write, head and body together; a
stream's head is not held for its first event; kept-alive and HTTP/1.0 clients get what
uvicorn would have sent them."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from agent_manager.router.limits import ClientLimits
from agent_manager.router.protocol import protocol_for
from agent_manager.router.scope_keys import BODY_COMPLETE, BODY_LATE, RESPOND

POST = b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ncontent-length: 2\r\n\r\n{}"
ANSWER = b'{"id":"chatcmpl-1"}'
DATE = (b"date", b"Mon, 07 Dec 2026 00:00:00 GMT")


class Recording:
    """A transport that keeps each write (writelines counts as one: it is one writev)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.closed_by_server = False  # before the client hung up

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, pieces: Any) -> None:
        self.writes.append(b"".join(pieces))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1234) if name in ("peername", "sockname") else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def serve(app: Any, *requests: bytes, limits: ClientLimits | None = None) -> Recording:
    """`requests` through the router's protocol class, as one client connection sends them
    (each piece a TCP read, 0.4 s apart)."""

    async def scenario() -> Recording:
        config = Config(app=app, lifespan="off", server_header=False)
        config.load()
        protocol_class = protocol_for(limits or ClientLimits())
        state = ServerState()
        state.default_headers = [DATE]  # what uvicorn's server keeps up to date
        protocol = protocol_class(config=config, server_state=state, app_state={})
        recording = Recording()
        protocol.connection_made(recording)  # type: ignore[arg-type]
        for request in requests:
            protocol.data_received(request)
            for _ in range(40):
                await asyncio.sleep(0.01)
        recording.closed_by_server = recording.closed
        protocol.connection_lost(None)
        return recording

    return asyncio.run(scenario())


async def relay_like(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    scope[RESPOND](200, [(b"content-type", b"application/json")], ANSWER)


def test_a_whole_answer_is_one_write_with_its_head() -> None:
    recording = serve(relay_like, POST)
    assert len(recording.writes) == 1
    head, body = recording.writes[0].split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"content-type: application/json" in lines
    assert b"content-length: %d" % len(ANSWER) in lines
    assert b"date: Mon, 07 Dec 2026 00:00:00 GMT" in lines  # the server's default headers
    assert body == ANSWER
    assert not recording.closed_by_server  # kept alive


def test_a_kept_alive_client_gets_each_answer_in_turn() -> None:
    recording = serve(relay_like, POST, POST)
    assert len(recording.writes) == 2
    assert all(write.endswith(ANSWER) for write in recording.writes)


def test_an_http_1_0_client_is_told_the_connection_closes_and_it_does() -> None:
    recording = serve(relay_like, POST.replace(b"HTTP/1.1", b"HTTP/1.0"))
    assert b"\r\nconnection: close\r\n" in recording.writes[0]
    assert recording.closed_by_server


def test_a_stream_head_is_not_held_for_its_first_event() -> None:
    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        head = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await asyncio.sleep(0.2)  # the first token is still being generated
        await send({"type": "http.response.body", "body": b"data: 0\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    writes = serve(streaming, POST).writes
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\n")
    assert b"data: 0" in writes[1]


def test_a_body_sent_after_its_head_reaches_the_app_whole() -> None:
    """The `openai` SDK writes a request's head and body apart: the app starts once, with the
    body there (no wait for it under a deadline)."""
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope.get(BODY_COMPLETE))
        seen.append(await receive())
        scope[RESPOND](200, [], b"ok")

    head, body = POST[:-2], POST[-2:]
    recording = serve(app, head, body)
    assert seen == [True, {"type": "http.request", "body": b"{}", "more_body": False}]
    assert recording.writes[0].endswith(b"ok")


def test_a_body_that_never_comes_starts_the_app_at_the_deadline_to_answer_408() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope.get(BODY_LATE))
        scope[RESPOND](408, [], b"late")

    serve(app, POST[:-2], limits=ClientLimits(body_timeout_s=0.2))
    assert seen == [True]


def test_a_client_that_expects_100_continue_gets_it_before_sending_its_body() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        scope[RESPOND](200, [], b"ok")

    head = POST[:-6] + b"\r\nexpect: 100-continue\r\n\r\n"
    recording = serve(app, head, b"{}")
    assert recording.writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert recording.writes[1].endswith(b"ok")
