"""`chat` and `bench` start the agent they need, as `ollama run` does: through
`agent-manager serve` when a router runs (it switches on `model`), else as `launch` would,
its progress on stderr so stdout keeps only the answers."""

from __future__ import annotations

from dataclasses import replace

from agent_manager import ui
from agent_manager.spec.endpoint import Endpoint, ensure_running, resolve_endpoint
from agent_manager.spec.workspace import Workspace


def serving_endpoint(ws: Workspace, agent: str, start: bool) -> Endpoint:
    """The endpoint that answers for `agent`, started first when nothing answers and `start`."""
    from agent_manager.adapters import http

    endpoint = resolve_endpoint(ws, agent)
    probe = http.probe_health(endpoint.url, timeout=3.0)
    if probe.healthy:
        return endpoint
    if not start or probe.status is not None:
        ensure_running(endpoint)  # says why: another program on the port, a dead engine, ...
        return endpoint
    routed = _through_router(ws, endpoint)
    if routed is not None:
        return routed
    ui.info(f"{endpoint.agent} is not running; starting it (as `agent-manager launch` does).")
    _launch(ws, endpoint.agent)
    ensure_running(endpoint)
    return endpoint


def _through_router(ws: Workspace, endpoint: Endpoint) -> Endpoint | None:
    from agent_manager.router.state_file import find_router, router_view

    router = router_view(ws, ui.warn)
    if router is None or not router.answering:
        return None
    ui.info(
        f"{endpoint.agent} is not running; asking it through `agent-manager serve` at "
        f"{router.url}/v1, which starts it."
    )
    info = find_router(ws, lambda _: None)
    # As `status` does: the router's key goes only to a loopback router.
    key_env = info.api_key_env if info is not None and info.loopback else None
    return replace(endpoint, url=router.url, api_key_env=key_env)


def _launch(ws: Workspace, agent: str) -> None:
    from agent_manager.cli.launch_view import render_failure, switch_with_view

    result = switch_with_view(
        ws, agent, None, lambda f: render_failure(f.agent, f.failure, f.container)
    )
    ui.success(f"{result.agent} is ready at {result.endpoint}.")
