"""Names a client asks for must reach exactly one agent: two agents serving one name (or an
agent serving another agent's own name) would make one of them unreachable through the router.

The one place that decides which names an agent answers to; more kinds of names (aliases)
are added here, in `names_of`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from agent_manager.errors import SpecError


class Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def served_name(self) -> str: ...

    @property
    def path(self) -> Path: ...

    @property
    def aliases(self) -> list[str]: ...


def names_of(agent: Named) -> list[tuple[str, str]]:
    """(name, what it is) for every name `agent` answers to."""
    names = [(agent.name, "agent name")]
    if agent.served_name != agent.name:
        names.append((agent.served_name, "served_name"))
    names += [(alias, "alias") for alias in agent.aliases]
    return names


def check_unique_names(agents: Iterable[Named]) -> None:
    """SpecError naming both files when a name reaches two agents."""
    owners: dict[str, tuple[Named, str]] = {}
    for agent in agents:
        for name, kind in names_of(agent):
            seen = owners.get(name)
            if seen is not None and seen[0].name != agent.name:
                other, other_kind = seen
                raise SpecError(
                    f"{agent.path}: {kind} '{name}' is also the {other_kind} of {other.name} "
                    f"({other.path}); a client asking for '{name}' could reach only one of them.",
                    hint="Give each agent names (served_name, aliases) no other agent uses.",
                )
            owners.setdefault(name, (agent, kind))
