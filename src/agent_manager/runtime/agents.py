"""What runs now, stopping it, and reading its log: the core of `status`, `stop` and `logs`.

Containers are found by our labels (never by guessing names); the Docker work itself is in
`adapters/docker.py`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters import http as http_adapter
from agent_manager.adapters import vllm_dev
from agent_manager.adapters.docker import AgentContainer
from agent_manager.errors import AgentManagerError, LaunchError, UsageError
from agent_manager.runtime.diagnose import Context, Failure, diagnose
from agent_manager.runtime.state import AgentState, RunningProbe
from agent_manager.spec.agents import Agent
from agent_manager.spec.endpoint import api_key_from
from agent_manager.spec.loader import display_path, load_agent
from agent_manager.spec.workspace import Workspace

# compose.py's stop_grace_period: vLLM drains in-flight requests on SIGTERM.
STOP_GRACE_S = 30.0
# How often a slow stop says it is still waiting.
SLOW_STOP_NOTICE_S = 5.0
DIAGNOSIS_TAIL = 300


# --------------------------------------------------------------------------- status


class AgentStatus(BaseModel):
    agent: str
    container: str
    state: str  # Docker's: running, exited, dead, created, restarting
    health: str  # ready, starting, unhealthy, crashed, stopped
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


class StatusReport(BaseModel):
    running: str | None  # the agent that runs, None when nothing does
    agents: list[AgentStatus]


def collect_status(ws: Workspace) -> StatusReport:
    from agent_manager.runtime.sleep_status import asleep_labels

    containers = docker_adapter.get_docker().list_agent_containers()
    rows = [_status_of(ws, container) for container in containers]
    asleep = asleep_labels(ws, containers) if any(r.health == "ready" for r in rows) else {}
    for row in rows:
        if row.agent in asleep and row.state == "running":
            row.health, row.sleep = "asleep", asleep[row.agent]
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
        health="stopped",
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
        if row.health == "ready" and url:
            metrics = http_adapter.fetch_metrics(url) or {}
            running = metrics.get("vllm:num_requests_running")
            waiting = metrics.get("vllm:num_requests_waiting")
            row.requests_running = int(running) if running is not None else None
            row.requests_waiting = int(waiting) if waiting is not None else None
            row.kv_cache_usage = metrics.get("vllm:kv_cache_usage_perc")
        return row
    row.exit_code = container.exit_code
    if container.state in ("exited", "dead") and container.exit_code not in (0, None):
        row.health = "crashed"
        failure = diagnose_container(container, display_path(ws.spec_path(container.agent)))
        row.exit_reason, row.exit_fix = failure.summary, failure.fix
    return row


def _model_cache(agent: Agent | None) -> str | None:
    from agent_manager.models.cache_state import cache_state

    return cache_state(agent).value if agent is not None else None


def _health(url: str | None, key: str | None, served: str | None) -> str:
    if url is None:
        return "unknown"
    probe = http_adapter.probe_health(url, timeout=1.0)
    if probe.status is None:
        return "starting"  # not listening yet: vLLM only listens once the engine is up
    if not probe.healthy:
        return "unhealthy"
    models = http_adapter.served_models(url, key, timeout=2.0)
    if models is None or (served is not None and served not in models):
        return "starting"
    return "ready"


def serving_probe(ws: Workspace) -> RunningProbe:
    """For `state.current_states`: a running container is ready once its server answers
    /health and lists its served name, else still starting (the same test `status` uses).
    A `switch: sleep` agent whose /is_sleeping says so is sleeping (it still answers /health)."""

    def probe(container: AgentContainer) -> AgentState:
        try:
            agent: Agent | None = load_agent(ws, container.agent)
        except AgentManagerError:
            agent = None
        url, key = _endpoint(agent, container.port)
        if agent is not None and agent.spec.switch == "sleep" and url is not None:
            try:
                if vllm_dev.is_sleeping(url, timeout=2.0):
                    return AgentState.SLEEPING
            except vllm_dev.DevApiError:
                return AgentState.STARTING  # not listening yet
        ready = _health(url, key, container.served_name) == "ready"
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


def diagnose_container(
    container: AgentContainer,
    spec_path: Path | None = None,
    gpu_holders: list[str] | None = None,
) -> Failure:
    lines = docker_adapter.get_docker().log_lines(container.id, tail=DIAGNOSIS_TAIL)
    ctx = Context(
        container.agent,
        container.exit_code,
        container.state,
        gpu_holders=gpu_holders or [],
        spec_path=spec_path,
    )
    return diagnose(lines, ctx)


# --------------------------------------------------------------------------- stop


class StoppedAgent(BaseModel):
    agent: str
    container: str
    was: str  # the state it was in
    seconds: float


class StopReport(BaseModel):
    stopped: list[StoppedAgent]
    nothing_to_stop: bool


def select_to_stop(
    containers: list[AgentContainer], agent: str | None, everything: bool
) -> list[AgentContainer]:
    """`stop AGENT`: all of that agent's containers; `stop`: what runs; `--all`: everything."""
    if everything:
        return list(containers)
    if agent is not None:
        return [c for c in containers if c.agent == agent]
    return [c for c in containers if c.running or c.state == "created"]


def stop_agents(
    ws: Workspace,
    agent: str | None,
    *,
    everything: bool = False,
    grace_s: float = STOP_GRACE_S,
    on_progress: Callable[[str], None] | None = None,
) -> StopReport:
    if agent is not None and everything:
        raise UsageError("Give an agent or --all, not both.")
    if agent is not None:
        agent = ws.resolve_agent(agent)
    chosen = select_to_stop(docker_adapter.get_docker().list_agent_containers(), agent, everything)
    stopped = [stop_and_remove(c, grace_s=grace_s, on_progress=on_progress) for c in chosen]
    for project in sorted({c.project for c in chosen}):
        docker_adapter.get_docker().remove_project_networks(project)
    return StopReport(stopped=stopped, nothing_to_stop=not stopped)


def stop_and_remove(
    container: AgentContainer,
    *,
    grace_s: float = STOP_GRACE_S,
    on_progress: Callable[[str], None] | None = None,
) -> StoppedAgent:
    """Stop gracefully (SIGTERM, SIGKILL after `grace_s`), remove, and wait until it is gone.

    Says so every few seconds while Docker takes its time, and gives up with a clear message
    if Docker does not finish well after the grace period.
    """
    start = time.monotonic()
    if container.running or container.state in ("created", "paused"):
        if on_progress:
            on_progress(f"Stopping {container.agent} (container {container.name})...")
        _bounded(
            lambda: docker_adapter.get_docker().stop_container(container.id, grace_s),
            what=f"stop {container.agent} (container {container.name})",
            limit_s=grace_s + 30,
            on_progress=on_progress,
            start=start,
        )
    docker_adapter.get_docker().remove_container(container.id)
    deadline = time.monotonic() + 30
    while docker_adapter.get_docker().agent_container(container.id) is not None:
        if time.monotonic() > deadline:
            raise LaunchError(
                f"Docker did not remove container {container.name} within 30 s.",
                hint=f"Check `docker ps -a` and remove it with `docker rm -f {container.name}`.",
            )
        time.sleep(0.05)
    return StoppedAgent(
        agent=container.agent,
        container=container.name,
        was=container.state,
        seconds=round(time.monotonic() - start, 2),
    )


def _bounded(
    action: Callable[[], None],
    *,
    what: str,
    limit_s: float,
    on_progress: Callable[[str], None] | None,
    start: float,
) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(SLOW_STOP_NOTICE_S)
        elapsed = time.monotonic() - start
        if worker.is_alive():
            if elapsed > limit_s:
                raise LaunchError(
                    f"Docker did not {what} within {limit_s:.0f} s.",
                    hint="Check `docker ps` and the Docker daemon (`systemctl status docker`).",
                )
            if on_progress:
                on_progress(
                    f"Still waiting to {what} after {elapsed:.0f} s (vLLM finishes in-flight "
                    "requests; Docker kills it at the end of the grace period)."
                )
    if errors:
        raise errors[0]


# --------------------------------------------------------------------------- logs


def container_for_logs(agent: str) -> AgentContainer:
    """The running container of `agent`, else its most recent one (a crashed one included)."""
    mine = [c for c in docker_adapter.get_docker().list_agent_containers() if c.agent == agent]
    if not mine:
        raise AgentManagerError(
            f"{agent} has no container: it was never launched, or it was stopped and removed.",
            hint=f"Start it with `agent-manager launch {agent}`.",
        )
    return next((c for c in mine if c.running), mine[0])


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """`--since`: a duration (`30s`, `10m`, `2h`, `1d`) or a time (`2026-11-23T10:00:00`)."""
    now = time.time() if now is None else now
    match = _DURATION.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since '{text}' is neither a duration nor a time.",
            hint="Use e.g. 30s, 10m, 2h, 1d, or 2026-11-23T10:00:00.",
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # a time without zone is local time, as `docker logs` reads it
    return when.astimezone(timezone.utc).timestamp()
