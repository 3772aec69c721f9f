"""Concrete changes, each with what it buys, for an agent whose numbers do not add up. Pure.

Every suggested context is capped at the model's own limit, and every suggested fraction passes
vLLM's start check as the verdict models it (free memory after the CUDA context).
"""

from __future__ import annotations

import math
from dataclasses import replace

from agent_manager.plan.memory import (
    FP8_KV,
    GIB,
    activation_peak_bytes,
    budget_bytes,
    cudagraph_bytes,
    estimate_weight_bytes,
    kv_bytes_for_context,
    kv_bytes_per_token,
    largest_context,
    largest_fraction,
    smallest_fraction,
)
from agent_manager.plan.sizing import Sizing, fmt
from agent_manager.spec.agents import AgentSpec

_CPU_SHARE = " (on CPU it is the share of host RAM)"


def budget_fixes(spec: AgentSpec, s: Sizing, context: int, largest: int | None) -> list[str]:
    """For an agent whose weights, allowances and KV cache exceed what vLLM gives it."""
    fixes: list[str] = []
    fixed, bpt, room = s.fixed or 0, s.bpt or 0, s.room or 0
    kv = kv_bytes_for_context(bpt, context)
    if largest:
        space = "cpu_kv_cache_gib" if s.kv_space is not None else "this budget"
        fixes.append(f"lower max_context to {largest} (the largest that fits {space})")
    if s.shape is not None and s.engine == "cuda" and spec.kv_cache_dtype not in FP8_KV:
        fp8_bpt = kv_bytes_per_token(s.shape, 1, spec.tensor_parallel_size)
        fp8 = largest_context(room, fp8_bpt, s.model_max)
        if fp8 >= context:
            fixes.append(f"kv_cache_dtype: fp8 halves the KV cache; {context} tokens then fit")
        elif fp8:
            fixes.append(f"kv_cache_dtype: fp8 halves the KV cache; up to {fp8} tokens then fit")
    if s.engine == "cuda":
        fixes += _graph_fixes(spec, s, gap=fixed + kv - s.budget)
    if room <= 0 or (s.shape is not None and fixed > s.budget * 0.8 and s.kv_space is None):
        fixes += _model_fixes(s, fixed + kv)
    if s.kv_space is not None:
        fixes += _kv_space_fixes(s, kv)
        return fixes
    fraction = smallest_fraction(fixed + kv, s.total)
    ceiling = largest_fraction(s.start_free, s.total)
    if s.fraction < fraction <= ceiling:
        when = " if nothing else uses the GPU" if s.on_paper else ""
        share = _CPU_SHARE if s.engine == "cpu" else ""
        fixes.append(f"raise gpu_memory_fraction to {fraction:.2f}{share}{when}")
    if s.engine == "cpu":
        fixes += _kv_space_fixes(s, kv)
    return fixes


def start_fixes(spec: AgentSpec, s: Sizing, needed: int, others: list[str]) -> list[str]:
    """For an agent whose budget is more than the free memory vLLM's start check sees."""
    fixes: list[str] = []
    if others:
        what = "GPU memory" if s.engine == "cuda" else "host RAM"
        fixes.append(f"free {what} held by {', '.join(others)}")
    free = s.start_free
    if s.engine == "cpu" and (s.kv_space is not None or needed > free):
        short = max(s.budget, needed) - free
        fixes.append(f"free {fmt(short)} of host RAM (close other programs or containers)")
    if s.kv_space is not None:
        return fixes + _kv_space_fixes(s, needed - (s.fixed or 0))
    fraction = largest_fraction(free, s.total)
    if fraction > 0 and budget_bytes(s.total, fraction) >= needed:
        share = _CPU_SHARE if s.engine == "cpu" else ""
        fixes.append(
            f"lower gpu_memory_fraction to {fraction:.2f}{share} (still fits, less KV cache)"
        )
    if s.engine == "cpu":
        fixes += _kv_space_fixes(s, needed - (s.fixed or 0))
    return fixes


def _kv_space_fixes(s: Sizing, kv: int) -> list[str]:
    """CPU: size the KV cache with cpu_kv_cache_gib (VLLM_CPU_KVCACHE_SPACE) when RAM allows."""
    gib = max(1, math.ceil(kv / GIB))
    if (s.fixed or 0) + gib * GIB > s.start_free:
        return []
    if s.kv_space is not None and gib * GIB == s.kv_space:
        return []
    return [f"set cpu_kv_cache_gib: {gib} ({gib} GiB of KV cache holds this context)"]


def _graph_fixes(spec: AgentSpec, s: Sizing, gap: int) -> list[str]:
    """CUDA graphs and sampler memory: worth saying only when it closes the gap or buys
    context."""
    if s.shape is None or spec.enforce_eager:
        return []
    fixes = []
    room = s.room or 0
    saved = cudagraph_bytes(s.shape, s.seqs, False)
    if room > 0 or saved >= gap:
        fixes.append(f"enforce_eager: true saves about {fmt(saved)} of CUDA graphs (slower tokens)")
    if s.seqs > 4:
        smaller = cudagraph_bytes(s.shape, 4, False) + activation_peak_bytes(s.shape, 0, 4)
        current = saved + activation_peak_bytes(s.shape, 0, s.seqs)
        if room > 0 or current - smaller >= gap:
            fixes.append(
                f"max_num_seqs: 4 (now {s.seqs}) saves about {fmt(current - smaller)} "
                "of CUDA graphs and sampler memory"
            )
    return fixes


def _model_fixes(s: Sizing, needed: int) -> list[str]:
    """The weights take most of the budget: a smaller checkpoint, or more memory."""
    fixes = []
    shape = s.shape
    if shape is not None and shape.quant_bits is None and shape.quant_method is None:
        quantized = estimate_weight_bytes(replace(shape, quant_bits=4, quant_group_size=128))
        size = f" (about {fmt(quantized)})" if quantized else ""
        fixes.append(f"use a 4-bit AWQ/GPTQ checkpoint of this model{size}")
    else:
        fixes.append("use a smaller model: its weights take most of the budget")
    device = "GPU with" if s.engine == "cuda" else "host with RAM of"
    fixes.append(
        f"or a {device} at least {needed / s.fraction / GIB:.1f} GiB "
        f"(at gpu_memory_fraction {s.fraction:.2f})"
    )
    return fixes
