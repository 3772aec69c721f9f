"""What a switch found (`SwitchPlan`) and how a strategy acts on it (`SwitchStrategy`).

The core (`core.py`) builds the plan inside the workspace lock and picks a strategy; the cold
(`cold.py`) and hot (`hot.py`) strategies implement the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agent_manager.adapters.docker import AgentContainer
from agent_manager.observe.state import AgentMachine
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


class SwitchStrategy(Protocol):
    """How the old agents are put away and the new one is brought up.

    Cold (today): stop and remove, then `compose up`. A hot switch (vLLM sleep mode) puts the
    old agent to sleep (ready → sleeping) instead, and wakes a sleeping new one
    (sleeping → starting → ready) instead of creating it: it plugs in at `strategy_for`.
    """

    def put_away(self, ctx: SwitchContext, plan: SwitchPlan) -> None: ...

    def bring_up(self, ctx: SwitchContext, plan: SwitchPlan) -> AgentContainer: ...
