"""What runs now and how it is doing: the core of `status` (stopping is in `switch/stop.py`,
the log's container and `--since` in `logs.py`).

Containers are found by our labels (never by guessing names); the Docker work itself is in
`adapters/docker.py`.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters import http as http_adapter
from agent_manager.adapters.docker import AgentContainer
from agent_manager.diagnosis.diagnose import Context, Failure, diagnose
from agent_manager.errors import AgentManagerError
from agent_manager.observe import serving
from agent_manager.observe.state import AgentState, RunningProbe
from agent_manager.spec.agents import Agent
from agent_manager.spec.endpoint import api_key_from
from agent_manager.spec.loader import display_path, load_agent
from agent_manager.spec.workspace import Workspace

DIAGNOSIS_TAIL = 300


# --------------------------------------------------------------------------- status


class AgentStatus(BaseModel):
    agent: str
    container: str
    state: str  # Docker's: running, exited, dead, created, restarting
    # The agent's state, in the one vocabulary (observe/state.py): stopped, starting, ready,
    # asleep, failed (crashed, or its engine answers /health with an error).
    health: AgentState
    endpoint: str | None
    served_name: str | None
    port: int | None
    started_at: str | None
    uptime_s: float | None
    exit_code: int | None
    exit_reason: str | None  # the diagnosis of a crashed container's last log lines
    exit_fix: str | None
    requests_running: int | None
    requests_waiting: int | None
    kv_cache_usage: float | None  # 0..1, vllm:kv_cache_usage_perc
    # Whether every file vLLM needs is in the local HF cache (then it starts offline).
    model_cache: str | None = None
    # `asleep (level 1, 5.2 GiB in host RAM)` for a sleep-mode agent that sleeps now.
    sleep: str | None = None
    # `9.8 GiB in host RAM`: what a level-1 sleep left pinned, asleep or awake again.
    host_ram: str | None = None


class StatusReport(BaseModel):
    running: str | None  # the agent that runs, None when nothing does
    agents: list[AgentStatus]


def collect_status(ws: Workspace) -> StatusReport:
    from agent_manager.observe.sleepers import asleep_labels, host_ram_held

    containers = docker_adapter.get_docker().list_agent_containers()
    rows = [_status_of(ws, container) for container in containers]
    asleep = (
        asleep_labels(ws, containers) if any(r.health is AgentState.READY for r in rows) else {}
    )
    host_ram = host_ram_held(ws, containers)
    for row in rows:
        if row.agent in asleep and row.state == "running":
            row.health, row.sleep = AgentState.ASLEEP, asleep[row.agent]
        if row.state == "running":
            row.host_ram = host_ram.get(row.agent)
    awake = [row for row in rows if row.state in ("running", "restarting") and not row.sleep]
    running = awake[0].agent if awake else None
    return StatusReport(running=running, agents=rows)


def _endpoint(agent: Agent | None, port: int | None) -> tuple[str | None, str | None]:
    """(base URL without /v1, API key) of the container's published port.

    The port comes from the container's label, not the spec: the spec may have changed (or
    broken) since launch. The bind address and key variable come from the spec when it loads.
    """
    if port is None:
        return None, None
    if agent is None:
        return http_adapter.base_url("127.0.0.1", port), None
    return http_adapter.base_url(agent.spec.bind, port), api_key_from(agent.spec.api_key_env)


def _status_of(ws: Workspace, container: AgentContainer) -> AgentStatus:
    try:
        agent: Agent | None = load_agent(ws, container.agent)
    except AgentManagerError:
        agent = None  # spec deleted or broken since launch: the labels still say enough
    url, key = _endpoint(agent, container.port)
    row = AgentStatus(
        agent=container.agent,
        container=container.name,
        state=container.state,
        health=AgentState.STOPPED,
        endpoint=f"{url}/v1" if url else None,
        served_name=container.served_name,
        port=container.port,
        started_at=container.started_at,
        uptime_s=None,
        exit_code=None,
        exit_reason=None,
        exit_fix=None,
        requests_running=None,
        requests_waiting=None,
        kv_cache_usage=None,
        model_cache=_model_cache(agent),
    )
    if container.running:
        row.uptime_s = _uptime(container.started_at)
        row.health = _health(url, key, container.served_name)
        if row.health is AgentState.READY and url:
            metrics = http_adapter.fetch_metrics(url) or {}
            running = metrics.get("vllm:num_requests_running")
            waiting = metrics.get("vllm:num_requests_waiting")
            row.requests_running = int(running) if running is not None else None
            row.requests_waiting = int(waiting) if waiting is not None else None
            row.kv_cache_usage = metrics.get("vllm:kv_cache_usage_perc")
        return row
    row.exit_code = container.exit_code
    if container.state in ("exited", "dead") and container.exit_code not in (0, None):
        row.health = AgentState.FAILED
        failure = diagnose_container(container, display_path(ws.spec_path(container.agent)))
        row.exit_reason, row.exit_fix = failure.summary, failure.fix
    return row


def _model_cache(agent: Agent | None) -> str | None:
    from agent_manager.models.cache_state import cache_state

    return cache_state(agent).value if agent is not None else None


def _health(url: str | None, key: str | None, served: str | None) -> AgentState:
    """A running container's state by the one serving look; without a port, serving is not
    proven (starting), and an engine whose /health answers an error has failed."""
    if url is None:
        return AgentState.STARTING
    state = serving.look(url, key, served).state
    return {serving.READY: AgentState.READY, serving.UNHEALTHY: AgentState.FAILED}.get(
        state, AgentState.STARTING
    )


def serving_probe(ws: Workspace, health: bool = True) -> RunningProbe:
    """For `state.current_states`: a running container is ready once its server answers
    /health and lists its served name, else still starting (the same test `status` uses).
    A `switch: sleep` agent whose /is_sleeping says so is asleep (it still answers /health).
    With `health=False` only the sleep question is asked: a running container counts as ready
    (the router's watch, every 2 s, needs no more)."""

    def probe(container: AgentContainer) -> AgentState:
        try:
            agent: Agent | None = load_agent(ws, container.agent)
        except AgentManagerError:
            agent = None
        url, key = _endpoint(agent, container.port)
        if agent is not None and agent.spec.switch == "sleep" and url is not None:
            sleeping = serving.asleep(url)
            if sleeping is None:
                return AgentState.STARTING  # not listening yet
            if sleeping:
                return AgentState.ASLEEP
        if not health:
            return AgentState.READY
        ready = _health(url, key, container.served_name) is AgentState.READY
        return AgentState.READY if ready else AgentState.STARTING

    return probe


def _uptime(started_at: str | None) -> float | None:
    when = parse_docker_time(started_at)
    return None if when is None else max(0.0, time.time() - when)


def parse_docker_time(text: str | None) -> float | None:
    """Docker's RFC 3339 time with nanoseconds (`2026-11-23T10:31:12.123456789Z`) → epoch."""
    if not text or text.startswith("0001-"):
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        return None
    base, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    when = datetime.fromisoformat(base + zone)
    return when.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def diagnose_container(container: AgentContainer, spec_path: Path) -> Failure:
    lines = docker_adapter.get_docker().log_lines(container.id, tail=DIAGNOSIS_TAIL)
    ctx = Context(container.agent, container.exit_code, container.state, spec_path=spec_path)
    return diagnose(lines, ctx)
