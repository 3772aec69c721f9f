"""A spec's `cpu:` block: the model and context it runs with on the CPU engine (`engine: auto`
on a machine without an NVIDIA GPU runtime, or `launch --engine cpu`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CpuChoice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    model: str | None = Field(None, description="Hugging Face repo id served on the CPU")
    max_context: int | Literal["auto"] | None = Field(None, description="--max-model-len on CPU")
    cpu_kv_cache_gib: int | None = Field(None, ge=1, description="VLLM_CPU_KVCACHE_SPACE, GiB")
