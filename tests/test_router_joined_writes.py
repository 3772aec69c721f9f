"""A relayed answer leaves the router in one write: head and body together (joined_writes.py),
through uvicorn's own protocol as `serve` runs it (protocol.py), on a recording transport."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from agent_manager.router.joined_writes import JoinedWrites
from agent_manager.router.limits import ClientLimits
from agent_manager.router.protocol import protocol_for
from agent_manager.router.scope_keys import JOIN_HEAD

REQUEST = b"POST /v1/chat/completions HTTP/1.1\r\nhost: r\r\ncontent-length: 2\r\n\r\n{}"


class Recording:
    """A transport that keeps each write (writelines counts as one: it is one writev)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

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

    def set_protocol(self, protocol: Any) -> None:
        pass


def test_a_held_head_goes_out_with_the_next_write_and_nothing_else_waits() -> None:
    recording = Recording()
    joined = JoinedWrites(recording)  # type: ignore[arg-type]
    joined.write(b"unheld")
    joined.hold()
    joined.write(b"head|")
    assert recording.writes == [b"unheld"]  # the head waits
    joined.write(b"body")
    joined.write(b"next")
    assert recording.writes == [b"unheld", b"head|body", b"next"]


def test_a_held_head_is_written_before_the_connection_closes() -> None:
    recording = Recording()
    joined = JoinedWrites(recording)  # type: ignore[arg-type]
    joined.hold()
    joined.write(b"head")
    joined.close()
    assert recording.writes == [b"head"]
    assert recording.closed


def serve_one(app: Any) -> list[bytes]:
    """One request through the router's protocol class; the writes the client got."""

    async def scenario() -> list[bytes]:
        config = Config(app=app, lifespan="off", server_header=False)
        config.load()
        protocol_class = protocol_for(ClientLimits())
        protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
        recording = Recording()
        protocol.connection_made(recording)  # type: ignore[arg-type]
        protocol.data_received(REQUEST)
        for _ in range(50):
            await asyncio.sleep(0.01)
        protocol.connection_lost(None)
        return recording.writes

    return asyncio.run(scenario())


def test_an_answer_sent_whole_after_join_head_is_one_write_with_its_head() -> None:
    async def relay_like(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        scope[JOIN_HEAD]()
        head = [(b"content-length", b"4"), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": b'{"a"'[:4]})

    writes = serve_one(relay_like)
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b'\r\n\r\n{"a"')


def test_a_stream_head_is_not_held_for_its_first_event() -> None:
    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        head = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await asyncio.sleep(0.2)  # the first token is still being generated
        await send({"type": "http.response.body", "body": b"data: 0\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    writes = serve_one(streaming)
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\n")
    assert b"data: 0" in writes[1]
