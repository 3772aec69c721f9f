"""Which sleep agents sleep now, for `status`, `list`, `gpu-stats` and `plan`."""

from __future__ import annotations

from dataclasses import dataclass

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters import http as http_adapter
from agent_manager.adapters.docker import AgentContainer
from agent_manager.errors import AgentManagerError
from agent_manager.observe import serving, sleep_records
from agent_manager.spec.agents import Agent
from agent_manager.spec.loader import load_agent
from agent_manager.spec.workspace import Workspace
from agent_manager.units import GIB

# Before a measurement: CUDA context + CUDA graphs and buffers vLLM keeps on the GPU. The CUDA
# context's own size is to be measured by scripts/device_check.sh on a lent H100/H200
# (docs/gpu-stats.md, pending); until then 1 GiB is an assumption (context + graphs, which
# vLLM does not offload by default). Replaced by the measured figure after a sleep.
DEFAULT_RESIDUAL_BYTES = 1 * GIB


@dataclass
class SleepAgent:
    """A running container of a `switch: sleep` agent, made from its current spec."""

    container: AgentContainer
    agent: Agent
    url: str
    asleep: bool


def sleep_spec(ws: Workspace, container: AgentContainer) -> tuple[Agent, str] | None:
    """(spec, base URL) when `container` runs a `switch: sleep` agent made from its current
    spec: only such a container can sleep; any other is stopped, not slept."""
    if not container.running or container.port is None:
        return None
    try:
        agent = load_agent(ws, container.agent)  # parsed once per file text (spec/loader.py)
    except AgentManagerError:
        return None  # spec gone or broken
    if agent.spec.switch != "sleep" or container.spec_hash != agent.spec_hash():
        return None
    return agent, http_adapter.base_url(agent.spec.bind, container.port)


def sleep_agents(ws: Workspace, containers: list[AgentContainer]) -> list[SleepAgent]:
    """Running containers that can sleep, and whether each sleeps now (vLLM's /is_sleeping)."""
    found = []
    for container in containers:
        spec = sleep_spec(ws, container)
        if spec is None:
            continue
        agent, url = spec
        asleep = serving.asleep(url)
        if asleep is None:
            continue  # still starting, or not in sleep mode: stopped as before
        found.append(SleepAgent(container, agent, url, asleep))
    return found


def residual_of(ws: Workspace, agent: Agent) -> int:
    """VRAM the agent keeps asleep: measured for this spec once seen, else the default."""
    record = sleep_records.read_record(ws, agent.name)
    if record and record.spec_hash == agent.spec_hash() and record.residual_bytes:
        return record.residual_bytes
    return DEFAULT_RESIDUAL_BYTES


def asleep_labels(ws: Workspace, containers: list[AgentContainer] | None = None) -> dict[str, str]:
    """agent → `asleep (level 1, 5.2 GiB in host RAM)` for each agent whose container sleeps.

    Without `containers` (`list`), asks Docker only when a record says something sleeps,
    so `list` stays offline otherwise.
    """
    records = {
        name: record
        for name in ws.agent_names()
        if (record := sleep_records.read_record(ws, name)) is not None and record.asleep
    }
    if not records and containers is None:
        return {}
    # Given the containers (`status`), the engines are asked even without a record: a sleep
    # whose record could not be written (a full disk) still sleeps, and must not show "ready".
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


def host_ram_held(ws: Workspace, containers: list[AgentContainer] | None = None) -> dict[str, str]:
    """agent → `9.8 GiB in host RAM` for each agent whose running container slept at level 1,
    asleep or awake again (PyTorch keeps the pinned blocks). Docker is asked only when a
    record has such a figure."""
    records = {
        name: record
        for name in ws.agent_names()
        if (record := sleep_records.read_record(ws, name)) is not None and record.host_ram_text()
    }
    if not records:
        return {}
    if containers is None:
        try:
            containers = docker_adapter.get_docker().list_agent_containers(include_stopped=False)
        except AgentManagerError:
            return {}
    running = {c.id for c in containers if c.running}
    return {
        name: str(record.host_ram_text())
        for name, record in records.items()
        if record.container_id in running
    }


def sleeper_residuals(ws: Workspace) -> dict[str, int]:
    """agent → VRAM it would keep asleep, for every sleep agent of ours that runs now."""
    try:
        containers = docker_adapter.get_docker().list_agent_containers(include_stopped=False)
    except AgentManagerError:
        return {}  # no Docker: nothing of ours runs
    return {s.agent.name: residual_of(ws, s.agent) for s in sleep_agents(ws, containers)}
