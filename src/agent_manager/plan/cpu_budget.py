"""A CPU agent's RAM need as one figure, for a target that must reserve it (a pod's memory).

The same sum `plan` and `launch` check against host RAM (`plan_cpu_agent`): weights + the
vLLM runtime and activation allowances + the KV space (`cpu_kv_cache_gib`), asked of the
planner rather than worked out again. Pure: the checkpoint facts are read by the caller.
"""

from __future__ import annotations

from agent_manager.plan.models import CheckpointFacts, HostTarget
from agent_manager.plan.verdict import plan_cpu_agent
from agent_manager.spec.agents import Agent

# Only the sum is wanted, not whether it fits this machine: no host limit applies.
_ANY_HOST = HostTarget(name="any host", total_bytes=2**62, available_bytes=2**62)


def cpu_budget(agent: Agent, facts: CheckpointFacts) -> tuple[int | None, str]:
    """(bytes, where the figure comes from), or (None, why it cannot be known)."""
    plan = plan_cpu_agent(agent, facts, _ANY_HOST)
    if plan.weights_bytes is None or not plan.allowances:
        return None, "; ".join(plan.unknowns) or "the checkpoint's size is not known"
    return plan.budget_bytes, plan.budget_source
