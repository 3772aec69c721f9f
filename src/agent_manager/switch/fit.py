"""The fit check: will the target start beside the agents left asleep on the GPU?"""

from __future__ import annotations

from agent_manager.adapters import docker as docker_adapter
from agent_manager.errors import LaunchError
from agent_manager.observe.sleepers import residual_of, sleep_agents
from agent_manager.plan import planner
from agent_manager.spec.agents import Agent
from agent_manager.spec.workspace import Workspace


def check_fit(ws: Workspace, agent: Agent, cold: bool, force: bool) -> tuple[list[str], bool]:
    """The planner's verdict with the sleepers left on the card: (warnings, keep sleepers).

    A wake is checked like a start: the woken engine maps its whole budget again (its own
    residual is counted as its own), beside the other sleepers' residuals; vLLM checks
    nothing on a wake, it fails with CUDA out of memory instead.
    """
    if cold:
        return planner.ensure_fits(agent, force=force), False
    found = sleep_agents(ws, docker_adapter.get_docker().list_agent_containers())
    others = [s for s in found if s.agent.name != agent.name]
    waking = any(s.agent.name == agent.name and s.asleep for s in found)
    if not others:
        return planner.ensure_fits(agent, force=force), True
    residuals = {s.agent.name: residual_of(ws, s.agent) for s in others}
    try:
        return planner.ensure_fits(agent, sleepers=residuals), True
    except LaunchError as refusal:
        names = ", ".join(sorted(residuals))
        line = (
            f"{agent.name} would not {'wake' if waking else 'fit'} beside sleeping {names} "
            f"({refusal.message}); stopping them instead (cold switch)."
        )
        return [line, *planner.ensure_fits(agent, force=force)], False
