"""What a switch found (`SwitchPlan`) and how a strategy acts on it (`SwitchStrategy`).

The core (`core.py`) builds the plan inside the workspace lock and picks a strategy; the cold
(`cold.py`) and hot (`hot.py`) strategies implement the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agent_manager.adapters.docker import AgentContainer
from agent_manager.errors import AgentManagerError
from agent_manager.observe.sleepers import SleepAgent, sleep_spec
from agent_manager.observe.state import AgentMachine, AgentState
from agent_manager.spec.loader import load_agent
from agent_manager.spec.workspace import Workspace
from agent_manager.switch.context import SwitchContext


@dataclass
class SwitchPlan:
    """What the switch found in Docker, and each agent's state machine from there."""

    containers: list[AgentContainer]  # every container of this instance, newest first
    keep: AgentContainer | None  # the target's own running container, left as it is
    machines: dict[str, AgentMachine]
    staying: set[str] = field(default_factory=set)  # ids of containers left asleep

    @property
    def to_put_away(self) -> list[AgentContainer]:
        return [c for c in self.containers if c is not self.keep and c.id not in self.staying]

    def machine(self, agent: str) -> AgentMachine:
        return self.machines[agent]

    def sleepers(self, ws: Workspace, target: str) -> list[SleepAgent]:
        """The other agents that can sleep and are ready or asleep, by the plan's one read:
        the hot switch puts them (or leaves them) to sleep, and the fit counts them."""
        found: list[SleepAgent] = []
        for container in self.containers:
            machine = self.machines.get(container.agent)
            if container.agent == target or machine is None:
                continue
            if machine.state not in (AgentState.ASLEEP, AgentState.READY):
                continue
            spec = sleep_spec(ws, container)
            if spec is not None and all(s.agent.name != container.agent for s in found):
                asleep = machine.state is AgentState.ASLEEP
                found.append(SleepAgent(container, spec[0], spec[1], asleep))
        return found

    def cannot_sleep(self, ws: Workspace, target: str) -> list[tuple[str, str]]:
        """(agent, why) for each other running `switch: sleep` agent that `sleepers` leaves
        out: the cold part stops it, and the user is told why it did not sleep."""
        able = {s.agent.name for s in self.sleepers(ws, target)}
        found: list[tuple[str, str]] = []
        for container in self.containers:
            name = container.agent
            if name == target or name in able or not container.running:
                continue
            if any(n == name for n, _ in found):
                continue
            why = _why_not_sleepable(ws, container, self.machines.get(name))
            if why:
                found.append((name, why))
        return found


def _why_not_sleepable(
    ws: Workspace, container: AgentContainer, machine: AgentMachine | None
) -> str | None:
    try:
        agent = load_agent(ws, container.agent)
    except AgentManagerError:
        return None  # spec gone or broken: a plain stop, as for any cold agent
    if agent.spec.switch != "sleep":
        return None
    if container.spec_hash != agent.spec_hash():
        return "its spec changed since it started"
    if machine is not None and machine.state not in (AgentState.ASLEEP, AgentState.READY):
        return f"it is {machine.state.value}, not ready"
    return "it does not answer vLLM's sleep endpoints"


@dataclass
class PutAway:
    """What `put_away` did to the other agents."""

    stopped: list[str] = field(default_factory=list)  # agents whose running container stopped
    asleep: list[str] = field(default_factory=list)  # agents put or left asleep


@dataclass(frozen=True)
class BroughtUp:
    """The target's container once `bring_up` is done, and whether it was woken from sleep."""

    container: AgentContainer
    woke: bool = False


class SwitchStrategy(Protocol):
    """How the old agents are put away and the new one is brought up.

    Cold (today): stop and remove, then `compose up`. A hot switch (vLLM sleep mode) puts the
    old agent to sleep (ready → sleeping) instead, and wakes a sleeping new one
    (sleeping → starting → ready) instead of creating it: it plugs in at `strategy_for`.
    """

    def put_away(self, ctx: SwitchContext, plan: SwitchPlan) -> PutAway: ...

    def bring_up(self, ctx: SwitchContext, plan: SwitchPlan) -> BroughtUp: ...
