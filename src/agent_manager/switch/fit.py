"""The fit check: will the target start, with the agents left asleep on the GPU counted?

Two looks. Before the workspace lock, `quick_fit` refuses at once what cannot fit even with
every agent of ours stopped (the planner counts their memory as free), so a launch that cannot
fit never waits for the lock. Inside the lock, `fit_in_plan` decides from the switch's one read
of what runs (the plan) whether the sleepers may stay.
"""

from __future__ import annotations

from agent_manager.errors import LaunchError
from agent_manager.observe.sleepers import residual_of
from agent_manager.observe.state import AgentState
from agent_manager.plan import planner
from agent_manager.spec.agents import Agent
from agent_manager.spec.workspace import Workspace
from agent_manager.switch.context import LaunchOptions
from agent_manager.switch.strategy import SwitchPlan


def quick_fit(agent: Agent, options: LaunchOptions) -> list[str] | None:
    """The planner's plain verdict (its warnings; raises when the agent cannot fit), or None
    when the verdict waits for the plan: a sleep agent may be asleep, and its wake is checked
    beside the other sleepers there."""
    if agent.spec.switch == "sleep" and not options.cold:
        return None
    return planner.ensure_fits(agent, force=options.force)


def fit_in_plan(
    ws: Workspace, agent: Agent, plan: SwitchPlan, options: LaunchOptions, plain: list[str] | None
) -> tuple[list[str], bool]:
    """(warnings, keep sleepers): the verdict with the sleepers left on the card. `plain` is
    `quick_fit`'s answer, taken again only if it was deferred."""

    def plain_verdict() -> list[str]:
        return plain if plain is not None else planner.ensure_fits(agent, force=options.force)

    if options.cold:
        return plain_verdict(), False
    # A wake is checked like a start: the woken engine maps its whole budget again (its own
    # residual counted as its own) beside the other sleepers' residuals. vLLM checks nothing
    # on a wake; it fails with CUDA out of memory instead.
    waking = agent.name in plan.machines and plan.machine(agent.name).state is AgentState.ASLEEP
    residuals = {s.agent.name: residual_of(ws, s.agent) for s in plan.sleepers(ws, agent.name)}
    if not residuals:
        return plain_verdict(), True
    try:
        return planner.ensure_fits(agent, sleepers=residuals), True
    except LaunchError as refusal:
        names = ", ".join(sorted(residuals))
        line = (
            f"{agent.name} would not {'wake' if waking else 'fit'} beside sleeping {names} "
            f"({refusal.message}); stopping them instead (cold switch)."
        )
        return [line, *plain_verdict()], False
