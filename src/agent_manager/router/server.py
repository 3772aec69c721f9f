"""Run the router: uvicorn's lifecycle, the state file `status` reads, a drained shutdown.

On Ctrl-C or SIGTERM: stop accepting, answer queued requests with 503, let in-flight ones
finish (up to --drain-timeout), leave the agent running unless --stop-agents-on-exit, exit 0.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Generator
from contextlib import contextmanager
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from agent_manager.errors import AgentManagerError, UsageError
from agent_manager.router.app import RouterCore
from agent_manager.router.config import RouterConfig, check_exposure
from agent_manager.spec.workspace import Workspace

LOG = logging.getLogger("agent_manager.router")


def serve(ws: Workspace, config: RouterConfig) -> int:
    """One router per workspace: claimed (or refused) before anything else happens."""
    from agent_manager.router.state_file import router_claim

    check_exposure(config)
    with router_claim(ws, config.host, config.port, config.api_key_env):
        return _serve(ws, config)


def _serve(ws: Workspace, config: RouterConfig) -> int:
    from agent_manager.adapters import compose as compose_adapter
    from agent_manager.adapters import docker as docker_adapter
    from agent_manager.adapters.http import base_url
    from agent_manager.router.app import build_app
    from agent_manager.router.catalog import Catalog, workspace_targets
    from agent_manager.router.switcher import DockerSwitcher

    catalog = Catalog(lambda: workspace_targets(ws))  # a broken spec refuses to start here
    if not catalog.targets():
        raise UsageError(
            f"No agents to serve in {ws.agents_dir}.", hint="Add an agent spec there first."
        )
    docker_adapter.get_docker()
    compose_adapter.ensure_compose_cli()
    sock = _listen(config)
    app = build_app(config, catalog, DockerSwitcher(ws, config.switch_timeout_s))
    logging.basicConfig(
        level=logging.DEBUG if config.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its own line per request: too chatty
    server = _Server(uvicorn_config(app, config, config.port), app.state.core)
    url = base_url(config.host, config.port)
    LOG.info("agent-manager router on %s/v1 (agents: %s)", url, ", ".join(catalog.names()))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if config.stop_agents_on_exit:
        _stop_agents(ws)
    return 0


def uvicorn_config(
    app: ASGIApp, config: RouterConfig, port: int, log_level: str = "info"
) -> uvicorn.Config:
    """How uvicorn runs the router (the hostile-client tests run it the same way)."""
    from agent_manager.router.protocol import protocol_for

    return uvicorn.Config(
        app,
        host=config.host,
        port=port,
        access_log=False,  # our own line per request, without bodies
        proxy_headers=False,  # nothing reads the client's address: no X-Forwarded-* pass
        server_header=False,  # no "server: uvicorn" on every answer
        http=protocol_for(config.limits),
        timeout_keep_alive=max(1, round(config.limits.keepalive_s)),
        timeout_graceful_shutdown=int(config.drain_timeout_s),
        log_level=log_level,
        lifespan="on",
    )


class _Server(uvicorn.Server):
    """uvicorn's Server, told about our shutdown and kept from re-raising the signal (uvicorn
    does, so a drained SIGTERM would exit 143 instead of 0)."""

    def __init__(self, config: uvicorn.Config, core: RouterCore):
        super().__init__(config)
        self.core = core

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            LOG.info("shutting down: finishing in-flight requests")
            self.core.begin_shutdown()
        super().handle_exit(sig, frame)

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


def _listen(config: RouterConfig) -> socket.socket:
    """Bind the port before anything starts, so a busy port is a clear error, not a log line."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: a response's header and body writes must not wait for
    # the client's delayed ACK (40 ms per request otherwise).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRNOTAVAIL:
            raise UsageError(
                f"{config.host} (--host) is not an address of this machine.",
                hint="Use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface).",
            ) from None
        raise UsageError(
            f"Cannot listen on {config.host}:{config.port}: {error.strerror}.",
            hint="Pass another --port, or stop what listens there (`ss -ltnp`).",
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _stop_agents(ws: Workspace) -> None:
    from agent_manager.switch.lock import workspace_lock
    from agent_manager.switch.stop import stop_agents

    try:
        with workspace_lock(ws.lock_path, agent="-", command="serve (exit)", timeout=60):
            report = stop_agents(ws, None)
    except AgentManagerError as error:
        LOG.error("could not stop the agents: %s", error.message)
        return
    for item in report.stopped:
        LOG.info("stopped %s", item.agent)
