"""An agent reduced to the bytes its verdict and fixes are worked out from."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent_manager.plan.models import Allowance, Engine
from agent_manager.plan.shape import ModelShape
from agent_manager.units import GIB


@dataclass
class Sizing:
    engine: Engine
    fraction: float  # gpu_memory_fraction (GPU only: the CPU compose file does not pass it)
    budget: int  # what vLLM takes: ceil(total x fraction) on GPU, weights etc. + KV space on CPU
    total: int  # the GPU's total, or host RAM's
    start_free: int  # free memory vLLM's check sees (an idle card's, on paper; RAM available)
    on_paper: bool = False  # an idle card assumed, not measured
    fixed: int | None = None  # weights + allowances: everything but the KV cache
    kv_space: int | None = None  # CPU: cpu_kv_cache_gib in bytes (VLLM_CPU_KVCACHE_SPACE)
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
