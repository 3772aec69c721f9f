"""Run a router app in-process (uvicorn in a thread, configured as `serve` configures it) for
tests; the real `openai` client and httpx talk to it over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import uvicorn
from starlette.applications import Starlette

from agent_manager.router.app import RouterCore
from agent_manager.router.config import RouterConfig
from agent_manager.router.server import uvicorn_config
from tests.standin.process import free_port


@dataclass
class Router:
    url: str
    core: RouterCore

    def client(self, **options: Any) -> openai.OpenAI:
        options.setdefault("api_key", "unused")
        return openai.OpenAI(base_url=self.url + "/v1", max_retries=0, **options)

    def status(self) -> dict[str, Any]:
        return httpx.get(self.url + "/router/status").json()


@contextmanager
def serving(app: Starlette, port: int | None = None) -> Iterator[Router]:
    port = port or free_port()
    config: RouterConfig = app.state.core.config
    server = uvicorn.Server(uvicorn_config(app, config, port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the router did not start"
        time.sleep(0.02)
    try:
        yield Router(f"http://127.0.0.1:{port}", app.state.core)
    finally:
        server.should_exit = True
        thread.join(30)
