"""The world a router/workspace attack runs in: a workspace, a router in this process on
127.0.0.1 (uvicorn with the router's own protocol and limits, the stand-in as po), a trap
that stands for an address the CLI never bound (it records every byte it is sent), and a bait
file outside the workspace that links point at.

Everything listens on 127.0.0.1 only; every raw client has a deadline.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from agent_manager.router.app import RouterCore, build_app
from agent_manager.router.catalog import Catalog, Target
from agent_manager.router.config import RouterConfig
from agent_manager.router.server import uvicorn_config
from tests.conftest import CliResult
from tests.fakes.switcher import FakeSwitcher
from tests.standin.process import free_port

SECRET = "s3cret-" + "k" * 24  # the value of every key variable the attacks name
BAIT_TEXT = "the user's own file: never to be written by agent-manager\n"

_TRAP = r"""
import socket, sys, threading
out = open(sys.argv[1], "ab", buffering=0)
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(64)
print(server.getsockname()[1], flush=True)
def serve(conn):
    conn.settimeout(1.0)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            if not piece:
                break
            data += piece
        out.write(data + b"\n--\n")
        body = b'{"active": "evil", "queue": {}, "switches": 0}'
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                     + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
    except OSError:
        pass
    conn.close()
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


@dataclass
class Trap:
    """An HTTP server in another process (so this test process does not listen on its port)."""

    port: int
    record: Path
    process: subprocess.Popen[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self) -> bytes:
        return self.record.read_bytes() if self.record.exists() else b""


@contextmanager
def trap(folder: Path) -> Iterator[Trap]:
    record = folder / "trap.log"
    process = subprocess.Popen(
        [sys.executable, "-c", _TRAP, str(record)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield Trap(port, record, process)
    finally:
        process.kill()
        process.wait(10)


class LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class Router:
    url: str
    port: int
    core: RouterCore
    switcher: Any
    log: LogLines


@contextmanager
def router(po_url: str, config: RouterConfig, switcher: Any | None = None) -> Iterator[Router]:
    """The router app on a free loopback port, served as `agent-manager serve` serves it."""
    targets = [
        Target("po", "po", po_url, None, 32768),
        Target("architect", "architect", f"http://127.0.0.1:{free_port()}", None, 8192),
    ]
    switcher = switcher or FakeSwitcher(seconds=0.0, running_agent="po")
    app = build_app(config, Catalog(lambda: targets), switcher)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, config, port, log_level="warning"))
    log = LogLines()
    logger = logging.getLogger("agent_manager.router")
    logger.addHandler(log)
    level = logger.level
    logger.setLevel(logging.INFO)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the router did not start"
        time.sleep(0.02)
    try:
        yield Router(f"http://127.0.0.1:{port}", port, app.state.core, switcher, log)
    finally:
        server.should_exit = True
        thread.join(30)
        logger.removeHandler(log)
        logger.setLevel(level)


@dataclass
class Outcome:
    """What the attacker (or the user) saw: an HTTP status or an exit code, and the text."""

    status: int
    text: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, result: CliResult) -> Outcome:
        return cls(result.code, result.output)


def raw(
    port: int, data: bytes, *, wait_s: float = 5.0, then: bytes = b"", pause_s: float = 0.0
) -> tuple[int, bytes, float]:
    """Send `data` (then `then` after `pause_s`), read until the router closes or `wait_s`
    passes. Returns (status or 0 if none, the bytes read, seconds until the close)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as conn:
        conn.sendall(data)
        if pause_s:
            time.sleep(pause_s)
        if then:
            try:
                conn.sendall(then)
            except OSError:
                pass
        received = b""
        conn.settimeout(wait_s)
        try:
            while True:
                piece = conn.recv(65536)
                if not piece:
                    break
                received += piece
        except (TimeoutError, OSError):
            pass
    status = 0
    if received.startswith(b"HTTP/"):
        status = int(received.split(b" ", 2)[1])
    return status, received, time.monotonic() - start


def post(
    path: str, body: bytes, headers: dict[str, str] | None = None, version: str = "1.1"
) -> bytes:
    lines = [f"POST {path} HTTP/{version}", "host: 127.0.0.1", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
