"""The router's routes, built by `build_app(config, catalog, switcher)`: no global state.

    GET  /health                  the router's own health (no key needed)
    GET  /v1/models               every agent of the workspace, with its state
    POST /v1/chat/completions     \
    POST /v1/completions           > to the agent whose served name or agent name is `model`
    POST /v1/embeddings           /
    GET  /router/status           active agent, queue per agent, switches, last switch
    GET  /metrics                 Prometheus
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_manager.observe.state import AgentState
from agent_manager.router.catalog import Catalog
from agent_manager.router.config import RouterConfig
from agent_manager.router.limits import BodyRefused, parse_json, read_body
from agent_manager.router.metrics import CONTENT_TYPE, RouterMetrics
from agent_manager.router.policy import Scheduler
from agent_manager.router.upstream import Forward, Relay, error_response, new_client

LOG = logging.getLogger("agent_manager.router")
OPEN_PATHS = ("/health",)
PROXIED = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
FIRST_LOOK_S = 3.0  # a hung Docker must not hold the router's start


class Switcher(Protocol):
    """What the router needs from the runtime (real: `switcher.DockerSwitcher`)."""

    async def switch_to(self, agent: str) -> None: ...

    async def stop(self, agent: str) -> None: ...

    async def running(self) -> str | None: ...

    def asleep(self) -> frozenset[str]: ...


@dataclass
class RouterCore:
    config: RouterConfig
    catalog: Catalog
    switcher: Switcher
    scheduler: Scheduler = field(init=False)
    metrics: RouterMetrics = field(init=False)
    relay: Relay | None = None
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.metrics = RouterMetrics(
            queue_depths=lambda: self.scheduler.queue_depths(),
            agents=lambda: [t.agent for t in self.catalog.targets()],
        )
        config = self.config
        self.scheduler = Scheduler(
            self.switcher.switch_to,
            self.switcher.stop,
            max_queue=config.max_queue,
            max_wait_s=config.max_wait_s,
            drain_timeout_s=config.drain_timeout_s,
            idle_stop_s=config.idle_stop_s,
            on_switch=self.metrics.switched,
        )

    def begin_shutdown(self) -> None:
        """Ctrl-C / SIGTERM: refuse new requests, answer queued ones; in-flight ones finish."""
        self.scheduler.close("The router is shutting down; retry against another endpoint.")

    def status(self) -> dict[str, Any]:
        scheduler = self.scheduler
        last = scheduler.last_switch
        return {
            "active": scheduler.active,
            "busy": None if scheduler.busy is None else str(scheduler.busy),
            "queue": {t.agent: scheduler.queued(t.agent) for t in self.catalog.targets()},
            "in_flight": scheduler.in_flight(),
            "switches": scheduler.switches,
            "last_switch": None
            if last is None
            else {
                "agent": last.agent,
                "seconds": last.seconds,
                "ok": last.ok,
                "outcome": last.message,
            },
            "uptime_s": round(time.time() - self.started, 1),
        }

    def agent_state(self, agent: str) -> AgentState:
        """The agent's state as the router knows it, in the vocabulary `status` shows."""
        busy = self.scheduler.busy
        if busy is not None and busy.agent == agent:
            return AgentState.STARTING if busy.action == "switching to" else AgentState.STOPPING
        if self.scheduler.active == agent:
            return AgentState.READY
        if agent in self.switcher.asleep():
            return AgentState.ASLEEP
        return AgentState.STOPPED


def build_app(config: RouterConfig, catalog: Catalog, switcher: Switcher) -> Starlette:
    core = RouterCore(config, catalog, switcher)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = new_client()
        core.relay = Relay(core.scheduler, core.metrics, client, debug=config.debug)
        with contextlib.suppress(Exception):  # Docker slow or down: the watch tries again
            running = await asyncio.wait_for(switcher.running(), FIRST_LOOK_S)
            core.scheduler.observe_running(running, core.scheduler.generation())
        tasks = [
            asyncio.create_task(core.scheduler.run()),
            asyncio.create_task(core.scheduler.watch(switcher.running, config.watch_period_s)),
        ]
        try:
            yield
        finally:
            core.begin_shutdown()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.aclose()

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def models(request: Request) -> Response:
        created = int(core.started)
        cards = [
            {
                "id": target.served_name,
                "object": "model",
                "created": created,
                "owned_by": "agent-manager",
                "agent": target.agent,
                "state": core.agent_state(target.agent).value,
                "max_model_len": target.max_context,
            }
            for target in catalog.targets()
        ]
        return JSONResponse({"object": "list", "data": cards})

    async def router_status(request: Request) -> Response:
        return JSONResponse(core.status())

    async def metrics(request: Request) -> Response:
        return Response(core.metrics.render(), media_type=CONTENT_TYPE)

    proxies = {path: _Proxy(core, path) for path in PROXIED}
    routes = [
        Route("/health", health),
        Route("/v1/models", models),
        Route("/router/status", router_status),
        Route("/metrics", metrics),
        *(Route(path, proxy, methods=["POST"]) for path, proxy in proxies.items()),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.core = core
    # The hot path: proxied POSTs skip Starlette's exception middleware and route table.
    app.add_middleware(_Front, proxies=proxies)
    key = config.api_key
    if key:
        app.add_middleware(_RequireKey, key=key)
    return app


class _Proxy:
    """The ASGI endpoint of one proxied route (plain ASGI so the relay owns the response)."""

    def __init__(self, core: RouterCore, path: str):
        self.core = core
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.monotonic()
        agent, status = "-", 400
        try:
            body = await read_body(receive, scope["headers"], self.core.config.limits)
            if body is None:  # the client left before it sent the whole body: nobody to answer
                return
            payload = parse_json(body)
        except BodyRefused as refused:
            status = refused.status
            await error_response(status, refused.message, "BadRequestError")(scope, receive, send)
            self.core.metrics.requests.labels(agent, str(status)).inc()
            LOG.info("POST %s refused: %d %s", self.path, status, refused.message)
            return
        model = payload.get("model") if isinstance(payload, dict) else None
        if not isinstance(model, str):
            message = "The body must be a JSON object with a 'model' naming an agent."
            await error_response(400, message, "BadRequestError")(scope, receive, send)
        elif (target := self.core.catalog.find(model)) is None:
            status = 404
            names = ", ".join(self.core.catalog.names()) or "none"
            message = f"The model '{model}' does not exist. Models: {names}."
            await error_response(404, message, "NotFoundError")(scope, receive, send)
        else:
            agent = target.agent
            if self.core.config.debug:
                LOG.debug("request for %s: %s", agent, body.decode(errors="replace"))
            assert self.core.relay is not None
            stream = payload.get("stream") is True
            forward = Forward(target, self.path, body, stream)
            status = await self.core.relay.handle(forward, scope, receive, send)
        self.core.metrics.requests.labels(agent, str(status)).inc()
        LOG.info(
            "POST %s model=%s -> %d in %.0f ms",
            self.path,
            agent,
            status,
            (time.monotonic() - start) * 1000,
        )


class _Front:
    """Sends proxied POSTs straight to their `_Proxy`; anything else to Starlette's routes. A
    failure in the proxy path is logged and answered with 500 in OpenAI's shape (if nothing
    was sent yet), where Starlette's error middleware would answer in plain text."""

    def __init__(self, app: ASGIApp, proxies: dict[str, _Proxy]):
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        proxy = self.proxies.get(scope["path"]) if scope["type"] == "http" else None
        if proxy is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started: list[bool] = []

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.append(True)
            await send(message)

        try:
            await proxy(scope, receive, tracked)
        except Exception:
            LOG.exception("the router failed on POST %s", scope["path"])
            if not started:
                message = "The router failed on this request; see its log."
                await error_response(500, message, "InternalServerError")(scope, receive, send)


class _RequireKey:
    """Every route but /health needs `Authorization: Bearer <the router's key>`."""

    def __init__(self, app: ASGIApp, key: str):
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if secrets.compare_digest(given, b"Bearer " + self.key):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401, "Missing or wrong API key for this router.", "AuthenticationError"
        )
        await response(scope, receive, send)
