"""How much memory a CPU agent's pod needs, from the planner's own CPU figure.

vLLM's CPU engine holds the weights, its runtime and the KV space (`cpu_kv_cache_gib`, which the
export passes as VLLM_CPU_KVCACHE_SPACE) in the pod's RAM; the planner adds these up for `plan`
and `launch` (`plan.verdict.plan_cpu_agent`), and the export asks it for the same sum rather
than working it out again. Pure: the checkpoint facts are read by the caller.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from agent_manager.export.limits import Notice
from agent_manager.plan.memory import GIB
from agent_manager.plan.models import CheckpointFacts, HostTarget
from agent_manager.plan.verdict import plan_cpu_agent
from agent_manager.spec.agents import Agent

# The /dev/shm Memory volume the CPU engine's processes share (vLLM asks for 160 MiB; see
# docs/cpu-engine.md). A Memory emptyDir counts against the pod's memory, so it is added in.
SHM_GIB = 1
BIND_ENV = "VLLM_CPU_OMP_THREADS_BIND"
_CORES = re.compile(r"^(\d+)(?:-(\d+))?$")
# Room the planner's verdict is not asked about: only the sum is wanted, not whether it fits here.
_ANY_HOST = HostTarget(name="a pod", total_bytes=2**62, available_bytes=2**62)


@dataclass(frozen=True)
class PodMemory:
    """A CPU agent's memory in whole GiB (None when the plan could not size it, and why)."""

    gib: int | None
    source: str

    @property
    def quantity(self) -> str | None:
        return None if self.gib is None else f"{self.gib}Gi"


def cpu_pod_memory(agent: Agent, facts: CheckpointFacts) -> PodMemory:
    """weights + runtime allowances + KV space (the planner's CPU budget) + the shm volume,
    rounded up to whole GiB."""
    plan = plan_cpu_agent(agent, facts, _ANY_HOST)
    if plan.weights_bytes is None or not plan.allowances:
        why = "; ".join(plan.unknowns) or "the checkpoint's size is not known"
        return PodMemory(None, why)
    gib = math.ceil(plan.budget_bytes / GIB) + SHM_GIB
    return PodMemory(
        gib,
        f"plan: {plan.budget_bytes / GIB:.2f} GiB ({plan.budget_source}) + {SHM_GIB} GiB /dev/shm",
    )


def bound_cores(agent: Agent) -> tuple[int | None, list[Notice]]:
    """The number of cores an explicit VLLM_CPU_OMP_THREADS_BIND list names (`0-3`,
    `0-3|4-7` for two ranks, `0,2,4`), which the pod must have; None for `auto`/`nobind`."""
    value = agent.spec.env.get(BIND_ENV, "auto").strip()
    cores: set[int] = set()
    for item in value.replace("|", ",").split(","):
        match = _CORES.match(item.strip())
        if match is None:
            return None, []
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        cores.update(range(first, last + 1))
    count = len(cores)
    return count, [
        Notice(
            agent.name,
            f"env.{BIND_ENV}",
            f"'{value}' names cores of this machine: the pod asks for {count} CPUs, but a "
            "node may give it other core ids and vLLM then cannot bind its threads. Use "
            "'auto' in the spec unless the node's CPU manager pins exactly these cores.",
        )
    ]
