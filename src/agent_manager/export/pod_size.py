"""How much memory and how many CPUs a CPU agent's pod needs.

The memory is the planner's own CPU figure (`plan.cpu_budget`: weights + vLLM runtime + KV
space, the sum `plan` and `launch` check), which the caller asks the planner for and hands in;
this module adds the /dev/shm volume and rounds it to what Kubernetes is given.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from agent_manager.export.limits import Notice
from agent_manager.spec.agents import Agent
from agent_manager.units import GIB

# The /dev/shm Memory volume the CPU engine's processes share (vLLM asks for 160 MiB; see
# docs/cpu-engine.md). A Memory emptyDir counts against the pod's memory, so it is added in.
SHM_GIB = 1
BIND_ENV = "VLLM_CPU_OMP_THREADS_BIND"
_CORES = re.compile(r"^(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class PodMemory:
    """A CPU agent's memory in whole GiB (None when the plan could not size it, and why)."""

    gib: int | None
    source: str

    @property
    def quantity(self) -> str | None:
        return None if self.gib is None else f"{self.gib}Gi"


def pod_memory(budget_bytes: int | None, source: str) -> PodMemory:
    """The planner's figure + the shm volume, rounded up to whole GiB; None (with the planner's
    reason) when it could not size the agent."""
    if budget_bytes is None:
        return PodMemory(None, source)
    gib = math.ceil(budget_bytes / GIB) + SHM_GIB
    return PodMemory(gib, f"plan: {budget_bytes / GIB:.2f} GiB ({source}) + {SHM_GIB} GiB /dev/shm")


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
