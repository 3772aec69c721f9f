"""Stopping agents: pick the containers, SIGTERM then SIGKILL, remove, wait until gone.

The core of `stop`, also used by the switch when another agent needs the GPU.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pydantic import BaseModel

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters.docker import AgentContainer
from agent_manager.errors import LaunchError, UsageError
from agent_manager.spec.workspace import Workspace

# compose.py's stop_grace_period: vLLM drains in-flight requests on SIGTERM.
STOP_GRACE_S = 30.0
# How often a slow stop says it is still waiting.
SLOW_STOP_NOTICE_S = 5.0


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
