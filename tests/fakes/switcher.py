"""A switcher without Docker for the router's policy and app tests: switches take `seconds`,
an agent listed in `failures` does not start, and everything done is recorded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from agent_manager.router.errors import SwitchFailed


@dataclass
class FakeSwitcher:
    seconds: float = 0.01
    failures: dict[str, tuple[str, str]] = field(default_factory=dict)  # agent -> (summary, fix)
    running_agent: str | None = None
    log: list[str] = field(default_factory=list)  # "switch po", "stop po"

    async def switch_to(self, agent: str) -> None:
        self.log.append(f"switch {agent}")
        self.running_agent = None  # the old agent is stopped first, as the real core does
        await asyncio.sleep(self.seconds)
        if agent in self.failures:
            raise SwitchFailed(agent, *self.failures[agent])
        self.running_agent = agent

    async def stop(self, agent: str) -> None:
        self.log.append(f"stop {agent}")
        self.running_agent = None

    async def running(self) -> str | None:
        return self.running_agent

    def asleep(self) -> frozenset[str]:
        return frozenset()

    @property
    def switches(self) -> list[str]:
        return [entry.split()[1] for entry in self.log if entry.startswith("switch")]
