"""Every name a client may send as `model` (agent name, served name, aliases) reaches exactly
one agent: checked across the workspace like ports, in one place."""

from __future__ import annotations

from agent_manager.errors import SpecError
from agent_manager.spec.agents import Agent


def model_names(agent: Agent) -> list[tuple[str, str]]:
    """(name, which field gives it) for each name `agent` answers to."""
    names = [(agent.name, "agent name"), (agent.served_name, "served_name")]
    names += [(alias, "aliases") for alias in agent.spec.aliases]
    return names


def check_model_names(agents: list[Agent]) -> None:
    owner: dict[str, tuple[Agent, str]] = {}
    for agent in agents:
        for name, field in model_names(agent):
            seen = owner.get(name)
            if seen is None:
                owner[name] = (agent, field)
            elif seen[0].name != agent.name:
                other, other_field = seen
                raise SpecError(
                    f"{agent.path}: '{field}': '{name}' is also the {other_field} of "
                    f"{other.name} ({other.path}); a request for it could not pick an agent.",
                    hint="Give each agent names (agent, served_name, aliases) no other uses.",
                )
