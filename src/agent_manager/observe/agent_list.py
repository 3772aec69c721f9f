"""The `list` command's data: every agent with its endpoint, compose file and cache state."""

from __future__ import annotations

from pydantic import BaseModel

from agent_manager.compose.files import ComposeState, compose_state
from agent_manager.errors import AgentManagerError
from agent_manager.models.cache_state import CacheState, cache_state
from agent_manager.spec.agents import Agent
from agent_manager.spec.endpoint import endpoint_for
from agent_manager.spec.loader import check_ports, load_agent
from agent_manager.spec.uniqueness import check_unique_names
from agent_manager.spec.workspace import Workspace


class AgentRow(BaseModel):
    name: str
    model: str
    revision: str | None
    served_name: str
    endpoint: str
    port: int
    max_context: int | str | None
    gpu_memory_fraction: float
    engine: str = "cuda"
    cpu_kv_cache_gib: int | None = None  # engine cpu: RAM for the KV cache
    compose: ComposeState
    override: bool
    model_cache: CacheState  # complete: the container starts offline (HF_HUB_OFFLINE=1)
    switch: str = "cold"  # cold, or "sleep (level N)"
    asleep: str | None = None  # `asleep (level 1, 5.2 GiB in host RAM)` while it sleeps
    # `9.8 GiB in host RAM` while its container lives after a level-1 sleep, asleep or not
    host_ram: str | None = None
    aliases: list[str] = []  # more names clients may send as `model`
    task: str = "generate"
    tool_parser: str | None = None
    reasoning_parser: str | None = None
    idle_minutes: float = 30.0  # `serve` stops (or sleeps) it after this long idle; 0 = never


class InvalidSpec(BaseModel):
    message: str
    hint: str | None = None


class AgentList(BaseModel):
    workspace: str
    workspace_source: str
    agents: list[AgentRow]
    misnamed: dict[str, str] = {}  # file in agents/ that is not read → the name to give it
    orphan_compose: list[str] = []  # compose files whose spec is gone
    invalid: dict[str, InvalidSpec] = {}  # agent → why its spec is unusable (the rest still list)


def collect_agent_list(ws: Workspace) -> AgentList:
    from agent_manager.observe.sleepers import asleep_labels, host_ram_held

    asleep = asleep_labels(ws)
    host_ram = host_ram_held(ws)
    rows = []
    agents, invalid = _loadable(ws)
    for agent in agents:
        spec = agent.spec
        rows.append(
            AgentRow(
                name=agent.name,
                model=spec.model,
                revision=spec.revision,
                served_name=agent.served_name,
                endpoint=endpoint_for(agent).url + "/v1",
                port=spec.port,
                max_context=spec.max_context,
                gpu_memory_fraction=spec.gpu_memory_fraction,
                engine=spec.engine,
                cpu_kv_cache_gib=spec.cpu_kv_cache_gib if spec.engine == "cpu" else None,
                compose=compose_state(ws, agent),
                override=ws.override_path(agent.name).is_file(),
                model_cache=cache_state(agent),
                switch="cold" if spec.switch == "cold" else f"sleep (level {spec.sleep_level})",
                asleep=asleep.get(agent.name),
                host_ram=host_ram.get(agent.name),
                aliases=list(spec.aliases),
                task=spec.task,
                tool_parser=spec.tool_parser,
                reasoning_parser=spec.reasoning_parser,
                idle_minutes=spec.idle_minutes,
            )
        )
    return AgentList(
        workspace=str(ws.root),
        workspace_source=ws.source,
        agents=rows,
        misnamed={str(path): better for path, better in ws.misnamed_specs().items()},
        orphan_compose=[str(path) for path in ws.orphan_compose_files()],
        invalid=invalid,
    )


def _loadable(ws: Workspace) -> tuple[list[Agent], dict[str, InvalidSpec]]:
    """Every agent whose spec loads, and for the others the message: one broken spec must not
    hide the rest."""
    agents: list[Agent] = []
    invalid: dict[str, InvalidSpec] = {}
    for name in ws.agent_names():
        try:
            agents.append(load_agent(ws, name))
        except AgentManagerError as error:
            invalid[name] = InvalidSpec(message=error.message, hint=error.hint)
    for check in (check_ports, check_unique_names):
        try:
            check(agents)
        except AgentManagerError as error:
            invalid[check.__name__] = InvalidSpec(message=error.message, hint=error.hint)
    return agents, invalid
