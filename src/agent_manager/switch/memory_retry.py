"""Out of memory beside sleepers: stop them and start the agent cold, once.

A wake or a start beside sleeping agents can run out of GPU memory although the planner said
it fits (a sleeper kept more than measured, another process grew; llm-d's "/wake_up fails with
CUDA Error: out of memory"). Stopping the sleepers frees their residuals, so the agent gets one
more cold start with the card to itself. Its own failure then stands.
"""

from __future__ import annotations

from agent_manager.adapters.docker import AgentContainer
from agent_manager.errors import LaunchError
from agent_manager.observe.state import AgentState
from agent_manager.switch.cold import ColdSwitch
from agent_manager.switch.context import LaunchFailed, SwitchContext
from agent_manager.switch.stop import STOP_GRACE_S, stop_and_remove
from agent_manager.switch.strategy import BroughtUp, SwitchPlan
from agent_manager.switch.vram import GpuWatch

# Diagnosis kinds (diagnosis/failure_rules.py) that mean the GPU's memory ran short.
MEMORY_KINDS = frozenset({"free-memory", "out-of-memory", "no-kv-memory"})
MEMORY_WORDS = ("out of memory", "outofmemory", "cuda error: out of memory")


def is_memory_failure(error: LaunchError) -> bool:
    if isinstance(error, LaunchFailed):
        return error.failure.kind in MEMORY_KINDS
    text = error.message.lower()
    return any(word in text for word in MEMORY_WORDS)


def sleepers_left(plan: SwitchPlan) -> list[AgentContainer]:
    return [c for c in plan.containers if c.id in plan.staying]


def stop_sleepers(ctx: SwitchContext, plan: SwitchPlan, why: str) -> bool:
    """Stop every sleeper left on the card, said in one line with `why`; False if none."""
    sleepers = sleepers_left(plan)
    if not sleepers:
        return False
    names = ", ".join(sorted({c.agent for c in sleepers}))
    ctx.events.warning(f"{why}; stopping sleeping {names} and starting {ctx.agent.name} cold.")
    watch = GpuWatch.before_stop(sleepers, ctx.events.message)
    for sleeper in sleepers:
        machine = plan.machine(sleeper.agent)
        machine.move(AgentState.STOPPING)
        stop_and_remove(sleeper, grace_s=STOP_GRACE_S, on_progress=ctx.events.message)
        machine.move(AgentState.STOPPED)
        ctx.progress.stopped.append(sleeper.agent)
    plan.staying = set()
    ctx.progress.asleep = []
    if watch is not None:
        watch.wait_until_free(ctx.events.message, ctx.deadline)
    return True


def retry_cold(
    ctx: SwitchContext, plan: SwitchPlan, failed: AgentContainer, error: LaunchFailed
) -> BroughtUp | None:
    """After a memory failure of a start beside sleepers: stop them and the failed container,
    then `compose up` once more. None (nothing done) when no sleeper stayed or it was not a
    memory failure."""
    if not is_memory_failure(error) or not sleepers_left(plan):
        return None
    why = f"{ctx.agent.name} ran out of GPU memory beside the sleepers ({error.message})"
    machine = plan.machine(ctx.agent.name)
    machine.move(AgentState.STOPPING)
    stop_and_remove(failed, grace_s=STOP_GRACE_S, on_progress=ctx.events.message)
    machine.move(AgentState.STOPPED)
    stop_sleepers(ctx, plan, why)
    plan.keep = None
    return ColdSwitch().bring_up(ctx, plan)
