r"""The router's routes, built by `build_app(config, catalog, switcher)`: no global state.

    GET  /health                  the router's own health (no key needed)
    GET  /v1/models[/{id}]        every agent of the workspace (and alias), with its state
    POST <every model route>      to the agent named by `model` (routes.py has the table)
    GET  /v1/responses/{id}       \ to the agent that made the response (pinned.py)
    POST /v1/responses/{id}/cancel/
    GET  /router/status           active agent, queue per agent, switches, last switch
    GET  /metrics                 Prometheus
Anything else: a JSON 404 (405) in the caller's dialect (dialects.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as Path
from starlette.types import Receive, Scope, Send

from agent_manager.observe.state import AgentState
from agent_manager.router.cards import model_card, model_cards
from agent_manager.router.catalog import Catalog
from agent_manager.router.config import RouterConfig
from agent_manager.router.dialects import error_response, no_route
from agent_manager.router.front import Front, RequireKey, RouterApp
from agent_manager.router.limits import BodyRefused, read_body
from agent_manager.router.metrics import CONTENT_TYPE, RouterMetrics
from agent_manager.router.pinned import PinnedResponse, check_previous
from agent_manager.router.pins import IdSniffer, Pin, ResponsePins
from agent_manager.router.policy import Scheduler
from agent_manager.router.routes import ROUTES, Prepared, Refusal, Route, prepare
from agent_manager.router.upstream import Forward, Relay, new_client

LOG = logging.getLogger("agent_manager.router")
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
    pins: ResponsePins = field(default_factory=ResponsePins)
    starts: dict[str, int] = field(default_factory=dict)  # fresh starts per agent (pins.py)

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
            idle_for=self.idle_for,
            on_switch=self._switched,
        )

    def idle_for(self, agent: str) -> float | None:
        """Seconds without a request before `agent` stops (or sleeps): --idle-stop, else the
        spec's idle_minutes (0: never)."""
        if self.config.idle_stop_s is not None:
            return self.config.idle_stop_s
        target = self.catalog.get(agent)
        return target.idle_s if target is not None else None

    def _switched(self, agent: str, seconds: float, ok: bool) -> None:
        self.metrics.switched(agent, seconds, ok)
        target = self.catalog.get(agent)
        if ok and not (target is not None and target.sleeps):
            self.starts[agent] = self.starts.get(agent, 0) + 1  # a new process: a new memory

    def pin(self, agent: str) -> Pin:
        return Pin(agent, self.starts.get(agent, 0))

    def lost_since(self, pin: Pin) -> bool:
        """The agent that made a pinned response was stopped since (or is being stopped)."""
        if self.starts.get(pin.agent, 0) != pin.epoch:
            return True
        target = self.catalog.get(pin.agent)
        if target is not None and target.sleeps:
            return False  # asleep or awake, the process (and its memory) lives on
        busy = self.scheduler.busy
        if busy is not None and not (busy.action == "switching to" and busy.agent == pin.agent):
            return True  # the agent is being stopped, or another takes the GPU from it
        return self.scheduler.active != pin.agent

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
            "idle": {
                "after_s": self.idle_for(scheduler.active) if scheduler.active else None,
                "left_s": scheduler.idle_left(),
            },
        }

    def state_name(self, agent: str) -> str:
        return self.agent_state(agent).value

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
        cards = model_cards(catalog, core.state_name, int(core.started))
        return JSONResponse({"object": "list", "data": cards})

    async def model(request: Request) -> Response:
        model_id = request.path_params["model_id"]
        card = model_card(catalog, model_id, core.state_name, int(core.started))
        if card is None:
            names = ", ".join(catalog.names()) or "none"
            message = f"The model '{model_id}' does not exist. Models: {names}."
            return error_response(404, message, "NotFoundError", param="model")
        return JSONResponse(card)

    async def router_status(request: Request) -> Response:
        return JSONResponse(core.status())

    async def metrics(request: Request) -> Response:
        return Response(core.metrics.render(), media_type=CONTENT_TYPE)

    proxies = {path: _Proxy(core, route) for path, route in ROUTES.items()}
    pinned = PinnedResponse(core)
    routes = [
        Path("/health", health),
        Path("/v1/models", models),
        Path("/v1/models/{model_id:path}", model),
        Path("/v1/responses/{response_id}", pinned, methods=["GET"]),
        Path("/v1/responses/{response_id}/cancel", pinned, methods=["POST"]),
        Path("/router/status", router_status),
        Path("/metrics", metrics),
        *(Path(path, proxy, methods=["POST"]) for path, proxy in proxies.items()),
    ]
    handlers = {404: no_route, 405: no_route}
    app = RouterApp(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.state.core = core
    key = config.api_key
    # The hot path: proxied POSTs skip Starlette's middleware, exception handling and routes.
    app.front = Front(dict(proxies), key.encode() if key else None)
    if key:
        app.add_middleware(RequireKey, key=key)
    return app


class _Proxy:
    """The ASGI endpoint of one proxied route (plain ASGI so the relay owns the response)."""

    def __init__(self, core: RouterCore, route: Route):
        self.core = core
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.monotonic()
        core, route = self.core, self.route
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        try:
            body = await read_body(receive, scope, core.config.limits)
            if body is None:  # the client left before it sent the whole body: nobody to answer
                return
            prepared = prepare(route, body, content_type, core.catalog)
            if isinstance(prepared, Prepared) and prepared.previous_response_id is not None:
                prepared = check_previous(core, prepared)
        except BodyRefused as refused:
            status = refused.status
            answer = error_response(
                status, refused.message, "BadRequestError", dialect=route.dialect
            )
            await answer(scope, receive, send)
            core.metrics.answered("-", status)
            LOG.info("POST %s refused: %d %s", route.path, status, refused.message)
            return
        if isinstance(prepared, Refusal):
            agent, status = prepared.agent, prepared.status
            refusal = error_response(
                status, prepared.message, prepared.kind, param=prepared.param, dialect=route.dialect
            )
            await refusal(scope, receive, send)
        else:
            agent = prepared.target.agent
            if core.config.debug:
                LOG.debug("request for %s: %s", agent, body.decode(errors="replace"))
            sniff = None
            if route.path == "/v1/responses":
                # Read while the request holds its agent: the epoch is the one that answers.
                sniff = IdSniffer(lambda response_id: core.pins.pin(response_id, core.pin(agent)))
            forward = Forward(
                prepared.target, route.path, prepared.body, prepared.stream, route.dialect,
                sniff=sniff,
            )  # fmt: skip
            assert core.relay is not None
            status = await core.relay.handle(forward, scope, receive, send)
        core.metrics.answered(agent, status)
        if core.config.access_log:
            LOG.info(
                "POST %s model=%s -> %d in %.0f ms",
                route.path,
                agent,
                status,
                (time.monotonic() - start) * 1000,
            )
