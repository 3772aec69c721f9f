"""What the planner takes in (checkpoint facts, the GPU or host) and gives out (the plans).

`AgentPlan` and `PlanReport` are the `plan --json` output; field names are part of the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from agent_manager.plan.shape import ModelShape

Verdict = Literal["fits", "does not fit", "unknown"]
Engine = Literal["cuda", "cpu"]


@dataclass(frozen=True)
class Weights:
    bytes: int | None
    source: str  # "local cache (2 files)", "hub file list", "estimated from config.json", ...
    estimated: bool = False


@dataclass(frozen=True)
class CheckpointFacts:
    """What could be learned about an agent's checkpoint, and what could not."""

    shape: ModelShape | None
    config_source: str
    weights: Weights
    problems: list[str] = field(default_factory=list)


class Holder(BaseModel):
    """A process holding VRAM on the target GPU."""

    label: str  # agent name, container name or "pid N"
    pid: int
    used_bytes: int | None
    agent: str | None


class GpuTarget(BaseModel):
    """The GPU planned against: a real one from NVML, or `--gpu-memory` on paper.

    `total_bytes` is the total vLLM sizes its budget on (CUDA's, i.e. NVML's total less the
    driver's reserved memory); `device_total_bytes` is NVML's own total, which vLLM uses to pick
    its batch defaults.
    """

    name: str
    source: Literal["nvml", "--gpu-memory"]
    total_bytes: int
    device_total_bytes: int | None = None
    total_exact: bool = True  # False when CUDA's total had to be taken from NVML v1
    free_bytes: int | None  # None on paper: an idle card is assumed
    holders: list[Holder] = []
    notes: list[str] = []

    def free_after_stopping_agents(self) -> int | None:
        """Free memory once `launch` has stopped our running agents (it always does first)."""
        if self.free_bytes is None:
            return None
        ours = sum(h.used_bytes or 0 for h in self.holders if h.agent)
        return min(self.total_bytes, self.free_bytes + ours)


class HostTarget(BaseModel):
    """The host's RAM, which a CPU agent is planned against."""

    name: str = "host RAM"
    total_bytes: int
    available_bytes: int
    notes: list[str] = []


class Allowance(BaseModel):
    name: str
    bytes: int
    source: str


class AgentPlan(BaseModel):
    """One agent's verdict and the numbers behind it (the `plan` output, table and JSON)."""

    agent: str
    model: str
    revision: str | None
    engine: Engine = "cuda"  # "cpu": planned against host RAM, not a GPU
    verdict: Verdict
    gpu_memory_fraction: float
    budget_bytes: int
    budget_source: str = ""  # "0.90 x total", or on CPU the weights + allowances + KV space sum
    weights_bytes: int | None
    weights_source: str
    weights_estimated: bool
    kv_cache_dtype: str
    kv_bytes_per_token: int | None
    context: int | None  # tokens planned (max_context, the model's limit, or the auto-fit one)
    context_source: str
    model_max_context: int | None
    kv_cache_bytes: int | None
    allowances: list[Allowance]
    needed_bytes: int | None
    headroom_bytes: int | None
    largest_context: int | None  # the largest max_context that fits this budget
    largest_context_fp8: int | None
    free_bytes: int | None
    reasons: list[str]  # why it does not fit
    fixes: list[str]
    unknowns: list[str]  # what the plan could not know
    notes: list[str]
    # `switch: sleep` at level 1: host RAM its sleep holds (and keeps after a wake), measured
    # once seen (source "measured"), else estimated (plan/host_ram.py).
    sleep_host_ram_bytes: int | None = None
    sleep_host_ram_source: str | None = None


class PlanReport(BaseModel):
    gpu: GpuTarget | None  # None when only CPU agents were planned
    host: HostTarget | None = None  # set when a CPU agent was planned
    agents: list[AgentPlan]
