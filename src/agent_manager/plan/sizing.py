"""An agent reduced to the bytes its verdict and fixes are worked out from."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent_manager.plan.memory import GIB
from agent_manager.plan.models import Allowance, Engine
from agent_manager.plan.shape import ModelShape

KV_SPACE_ENV = "VLLM_CPU_KVCACHE_SPACE"


@dataclass
class Sizing:
    engine: Engine
    fraction: float  # gpu_memory_fraction (on CPU, vLLM reads it as a share of host RAM)
    budget: int  # what vLLM takes: ceil(total x fraction), or weights etc. + KV space on CPU
    total: int  # the memory the fraction is a share of
    start_free: int  # free memory vLLM's start check sees (an idle card's, on paper)
    on_paper: bool = False  # an idle card assumed, not measured
    fixed: int | None = None  # weights + allowances: everything but the KV cache
    kv_space: int | None = None  # VLLM_CPU_KVCACHE_SPACE in bytes, when set
    bpt: int | None = None  # KV bytes per token
    shape: ModelShape | None = None
    model_max: int | None = None  # the model's context limit
    seqs: int = 256  # max_num_seqs in effect
    allowances: list[Allowance] = field(default_factory=list)

    @property
    def room(self) -> int | None:
        """Bytes left for the KV cache."""
        if self.kv_space is not None:
            return self.kv_space
        return None if self.fixed is None else self.budget - self.fixed


def fmt(value: int | float) -> str:
    return f"{value / GIB:.2f} GiB"
