"""Which sleep agents sleep now, for `status`, `list`, `gpu-stats` and `plan`."""

from __future__ import annotations

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters.docker import AgentContainer
from agent_manager.errors import AgentManagerError
from agent_manager.runtime import sleep_records
from agent_manager.runtime.hot_switch import residual_of, sleep_agents
from agent_manager.spec.workspace import Workspace


def asleep_labels(ws: Workspace, containers: list[AgentContainer] | None = None) -> dict[str, str]:
    """agent → `asleep (level 1, 5.2 GiB in host RAM)` for each agent whose container sleeps.

    Asks Docker only when a record says something sleeps, so `list` stays offline otherwise.
    """
    records = {
        name: record
        for name in ws.agent_names()
        if (record := sleep_records.read_record(ws, name)) is not None and record.asleep
    }
    if not records:
        return {}
    if containers is None:
        try:
            containers = docker_adapter.get_docker().list_agent_containers()
        except AgentManagerError:
            return {}
    labels = {}
    for other in sleep_agents(ws, containers):
        if not other.asleep:
            continue
        record = sleep_records.asleep_record(ws, other.agent.name, other.container.id)
        labels[other.agent.name] = record.label() if record else "asleep"
    return labels


def sleeper_residuals(ws: Workspace) -> dict[str, int]:
    """agent → VRAM it would keep asleep, for every sleep agent of ours that runs now."""
    try:
        containers = docker_adapter.get_docker().list_agent_containers(include_stopped=False)
    except AgentManagerError:
        return {}  # no Docker: nothing of ours runs
    return {s.agent.name: residual_of(ws, s.agent) for s in sleep_agents(ws, containers)}
