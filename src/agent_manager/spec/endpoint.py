"""Where an agent answers: its URL, the model name clients send, its API key — and whether
anything answers there right now.

"Running" means what a client experiences: `/health` answers 200 on the spec's port. Docker
is asked only to explain a failure (container up but still loading, or not there at all).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agent_manager.adapters import http
from agent_manager.errors import AgentApiError, AgentManagerError
from agent_manager.spec.agents import Agent
from agent_manager.spec.loader import load_agent
from agent_manager.spec.workspace import Workspace


@dataclass(frozen=True)
class Endpoint:
    agent: str
    url: str  # http://127.0.0.1:<port>, without /v1
    model: str  # the served name clients put in "model"
    api_key_env: str | None
    spec_path: Path | None = None  # as the user would type it (the workspace may be anywhere)

    @property
    def spec_file(self) -> str:
        return str(self.spec_path) if self.spec_path is not None else f"the spec of {self.agent}"

    @property
    def api_key(self) -> str | None:
        return api_key_from(self.api_key_env)


def api_key_from(variable: str | None) -> str | None:
    """The key in the variable a spec's api_key_env names; unset or empty means no key."""
    return os.environ.get(variable) or None if variable else None


_TIMEOUTS = ("ReadTimeout", "ConnectTimeout", "Timeout")


class AgentNotRunningError(AgentManagerError):
    """Nothing serves the agent on its port."""


def endpoint_for(agent: Agent) -> Endpoint:
    spec = agent.spec
    return Endpoint(
        agent.name,
        http.base_url(spec.bind, spec.port),
        agent.served_name,
        spec.api_key_env,
        spec_path=agent.path,
    )


def resolve_endpoint(ws: Workspace, name: str) -> Endpoint:
    return endpoint_for(load_agent(ws, ws.resolve_agent(name)))


def ensure_running(endpoint: Endpoint) -> None:
    """Raise AgentNotRunningError (with how to start it) unless /health answers 200."""
    probe = http.probe_health(endpoint.url, timeout=3.0)
    if probe.error in _TIMEOUTS:
        # Something accepted the connection but is slow (a loaded machine): ask once more.
        probe = http.probe_health(endpoint.url, timeout=10.0)
    if probe.healthy:
        return
    name = endpoint.agent
    if probe.status == 503:
        raise AgentNotRunningError(
            f"agent {name} is up but its engine is dead (/health answered 503 at {endpoint.url}).",
            hint=f"See why with `agent-manager logs {name}`, then `agent-manager launch {name}`.",
        )
    if probe.status is not None:
        raise AgentNotRunningError(
            f"Something else answers on {endpoint.url}: /health gave HTTP {probe.status}, not "
            f"agent {name}.",
            hint=f"Stop that program or give {name} another 'port' in {endpoint.spec_file}.",
        )
    if _container_running(name):
        raise AgentNotRunningError(
            f"agent {name} is starting: its container runs but {endpoint.url} does not answer yet.",
            hint=f"Follow it with `agent-manager logs {name}`; vLLM answers once the model is "
            "loaded.",
        )
    raise AgentNotRunningError(
        f"agent {name} is not running — start it with `agent-manager launch {name}`",
        hint=f"Nothing answers on {endpoint.url}.",
    )


def explain_api_error(endpoint: Endpoint, error: AgentApiError) -> AgentManagerError:
    """An HTTP refusal → a message about this agent and what to do."""
    name = endpoint.agent
    if error.status == 401:
        if endpoint.api_key_env and not endpoint.api_key:
            hint = (
                f"Set {endpoint.api_key_env} to the key {name} was launched with "
                f"({endpoint.spec_file} names it in api_key_env)."
            )
        elif endpoint.api_key_env:
            hint = f"{endpoint.api_key_env} does not hold the key {name} was launched with."
        else:
            hint = (
                f"The server wants an API key but {endpoint.spec_file} has no api_key_env; add "
                "`api_key_env: <VARIABLE>` and export that variable."
            )
        return AgentApiError(f"agent {name} refused the request: wrong or missing API key.", hint)
    if error.status == 404:
        served = http.served_models(endpoint.url, endpoint.api_key)
        listing = ", ".join(served) if served else "unknown"
        return AgentApiError(
            f"{endpoint.url} does not serve model '{endpoint.model}' (it serves: {listing}).",
            hint=f"Relaunch with `agent-manager launch {name}` so the server matches the spec.",
        )
    if error.status is not None and 400 <= error.status < 500:
        return AgentApiError(
            f"agent {name} refused the request: {error.server_message}",
            hint="Change the option it names (e.g. a smaller --max-tokens).",
        )
    return AgentApiError(
        f"agent {name} failed to answer: {error.message}",
        hint=f"See `agent-manager logs {name}`.",
    )


def _container_running(agent: str) -> bool:
    from agent_manager.adapters import docker

    try:
        return any(
            c.agent == agent and c.running for c in docker.get_docker().list_agent_containers(False)
        )
    except Exception:  # noqa: BLE001 - Docker only refines the message; any failure means "no"
        return False
