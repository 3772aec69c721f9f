"""Each agent's state, with the transitions allowed between states checked.

    stopped ──▶ starting ──▶ ready ──▶ stopping ──▶ stopped
                   │  ▲        │  ▲       ▲
                   │  └─wake─  asleep  ─┘ (put to sleep / woken, for hot switching)
                   ▼
                 failed ──▶ stopping

The truth is Docker, never memory: `state_of` reads an agent's state from its container
(found by our labels), and `AgentMachine` only guards the moves one switch makes from there.
A process that keeps states in memory (the router) reads them again before it decides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from agent_manager.adapters.docker import AgentContainer
from agent_manager.errors import AgentManagerError


class AgentState(str, Enum):
    STOPPED = "stopped"  # no container, or one that ended cleanly
    STARTING = "starting"  # a container exists and runs, but has not proven it serves
    READY = "ready"  # /health answers and /v1/models lists the served name
    ASLEEP = "asleep"  # running, weights offloaded (vLLM sleep mode); woken to serve
    STOPPING = "stopping"  # being stopped and removed
    FAILED = "failed"  # the container ended with an error, or Docker reports it broken


S = AgentState
TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.READY, S.FAILED, S.STOPPING}),
    S.READY: frozenset({S.STOPPING, S.ASLEEP, S.FAILED}),
    # Waking goes through starting: the agent serves again only once it is ready.
    S.ASLEEP: frozenset({S.STARTING, S.STOPPING, S.FAILED}),
    S.STOPPING: frozenset({S.STOPPED, S.FAILED}),
    S.FAILED: frozenset({S.STOPPING}),
}


class IllegalTransition(AgentManagerError):
    """A switch tried a move the state machine forbids: something changed under it."""

    def __init__(self, agent: str, old: AgentState, new: AgentState):
        super().__init__(
            f"{agent} cannot go from {old.value} to {new.value}: its container changed while "
            "agent-manager was switching (another command, or `docker` by hand).",
            hint="See `agent-manager status`, then run the command again.",
        )
        self.agent = agent
        self.old = old
        self.new = new


def can_move(old: AgentState, new: AgentState) -> bool:
    return new in TRANSITIONS[old]


class AgentMachine:
    """One agent's state during a switch; every move is checked and reported."""

    def __init__(
        self,
        agent: str,
        state: AgentState,
        on_change: Callable[[str, AgentState, AgentState], None] | None = None,
    ):
        self.agent = agent
        self.state = state
        self._on_change = on_change

    def move(self, new: AgentState) -> None:
        """Go to `new`; IllegalTransition when the table forbids it."""
        old = self.state
        if not can_move(old, new):
            raise IllegalTransition(self.agent, old, new)
        self.state = new
        if self._on_change is not None:
            self._on_change(self.agent, old, new)

    def __repr__(self) -> str:
        return f"AgentMachine({self.agent!r}, {self.state.value})"


# Says what a running container is doing (ready, asleep, still starting): an HTTP look at
# its server. Without one, a running container reads as starting (serving is not proven).
RunningProbe = Callable[[AgentContainer], AgentState]


def state_of(container: AgentContainer | None, probe: RunningProbe | None = None) -> AgentState:
    """An agent's state from its container as Docker reports it."""
    if container is None:
        return S.STOPPED
    docker_state = container.state
    if docker_state == "running":
        return probe(container) if probe is not None else S.STARTING
    if docker_state in ("created", "restarting"):
        return S.STARTING
    if docker_state == "removing":
        return S.STOPPING
    if docker_state == "exited" and container.exit_code in (0, None):
        return S.STOPPED
    # exited with an error, dead, paused by hand, or a state Docker adds later: it does not
    # serve and will not by itself; a switch removes it.
    return S.FAILED


@dataclass(frozen=True)
class AgentNow:
    """One agent's state now, with the container it was read from (None: no container)."""

    agent: str
    state: AgentState
    container: AgentContainer | None


def states_from(
    containers: Iterable[AgentContainer],
    agents: Iterable[str] = (),
    probe: RunningProbe | None = None,
) -> dict[str, AgentNow]:
    """Every agent's state: those in `agents` (stopped when they have no container) and every
    agent that has a container. With several containers, the running one (else the newest)
    decides, as `status` and `logs` choose."""
    by_agent: dict[str, AgentContainer] = {}
    for container in containers:  # newest first, as the adapter lists them
        current = by_agent.get(container.agent)
        if current is None or (container.running and not current.running):
            by_agent[container.agent] = container
    if probe is not None:
        probe = _asked_at_once(list(by_agent.values()), probe)
    names = sorted(set(agents) | set(by_agent))
    return {
        name: AgentNow(name, state_of(by_agent.get(name), probe), by_agent.get(name))
        for name in names
    }


def _asked_at_once(containers: list[AgentContainer], probe: RunningProbe) -> RunningProbe:
    """`probe` answered for every running container at once: each answer is one to three HTTP
    looks that mostly wait on an engine, and a switch asks them inside the workspace lock.
    The first error is raised, as asking one by one would."""
    running = [c for c in containers if c.state == "running"]  # what `state_of` probes
    if len(running) < 2:
        return probe
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(running)) as pool:
        answers = dict(zip([c.id for c in running], pool.map(probe, running), strict=True))
    return lambda container: answers[container.id] if container.id in answers else probe(container)


def current_states(
    agents: Iterable[str] = (), probe: RunningProbe | None = None
) -> dict[str, AgentNow]:
    """Every agent's state, read from Docker now."""
    from agent_manager.adapters import docker

    return states_from(docker.get_docker().list_agent_containers(), agents, probe)
