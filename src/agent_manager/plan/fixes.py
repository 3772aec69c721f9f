"""Concrete changes, each with what it buys, for an agent whose numbers do not add up. Pure.

Every suggested context is capped at the model's own limit, and every suggested fraction passes
vLLM's start check as the verdict models it (free memory after the CUDA context). CPU agents
get KV-space (cpu_kv_cache_gib) and host-RAM fixes instead: their compose file passes no fraction.
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


def budget_fixes(spec: AgentSpec, s: Sizing, context: int, largest: int | None) -> list[str]:
    """For an agent whose weights, allowances and KV cache exceed what vLLM gives it."""
    if s.kv_space is not None:
        return _kv_space_fixes(s, context, largest)
    fixes: list[str] = []
    fixed, bpt, room = s.fixed or 0, s.bpt or 0, s.room or 0
    kv = kv_bytes_for_context(bpt, context)
    if largest:
        fixes.append(f"lower max_context to {largest} (the largest that fits this budget)")
    if s.shape is not None and spec.kv_cache_dtype not in FP8_KV:
        fp8_bpt = kv_bytes_per_token(s.shape, 1, spec.tensor_parallel_size)
        fp8 = largest_context(room, fp8_bpt, s.model_max)
        if fp8 >= context:
            fixes.append(f"kv_cache_dtype: fp8 halves the KV cache; {context} tokens then fit")
        elif fp8:
            fixes.append(f"kv_cache_dtype: fp8 halves the KV cache; up to {fp8} tokens then fit")
    fixes += _graph_fixes(spec, s, gap=fixed + kv - s.budget)
    if room <= 0 or (s.shape is not None and fixed > s.budget * 0.8):
        fixes += _model_fixes(s)
        fixes.append(
            f"or a GPU with at least {(fixed + kv) / s.fraction / GIB:.1f} GiB "
            f"(at gpu_memory_fraction {s.fraction:.2f})"
        )
    fraction = smallest_fraction(fixed + kv, s.total)
    ceiling = largest_fraction(s.start_free, s.total)
    if s.fraction < fraction <= ceiling:
        when = " if nothing else uses the GPU" if s.on_paper else ""
        fixes.append(f"raise gpu_memory_fraction to {fraction:.2f}{when}")
    return fixes


def start_fixes(
    spec: AgentSpec, s: Sizing, needed: int, others: list[str], context: int
) -> list[str]:
    """For an agent whose budget is more than the free memory vLLM's check sees."""
    if s.kv_space is not None:
        return _ram_fixes(s, needed, context)
    fixes: list[str] = []
    if others:
        fixes.append(f"free GPU memory held by {', '.join(others)}")
    fraction = largest_fraction(s.start_free, s.total)
    if fraction > 0 and budget_bytes(s.total, fraction) >= needed:
        fixes.append(f"lower gpu_memory_fraction to {fraction:.2f} (still fits, less KV cache)")
    return fixes


def _kv_space_fixes(s: Sizing, context: int, largest: int | None) -> list[str]:
    """CPU: the KV space (cpu_kv_cache_gib) cannot hold one request of `context` tokens."""
    fixes = []
    if largest:
        fixes.append(
            f"lower max_context to {largest} "
            f"(the largest that fits cpu_kv_cache_gib: {(s.kv_space or 0) // GIB})"
        )
    tokens = min(context, s.model_max) if s.model_max else context
    gib = max(1, math.ceil(kv_bytes_for_context(s.bpt or 0, tokens) / GIB))
    ram = (s.fixed or 0) + gib * GIB
    short = ram - s.start_free
    then = ""
    if short > 0:
        then = f"; host RAM then needs {fmt(ram)}, {fmt(short)} more than is available"
    fixes.append(f"set cpu_kv_cache_gib: {gib} ({gib} GiB of KV cache holds {tokens} tokens{then})")
    return fixes


def _ram_fixes(s: Sizing, needed: int, context: int) -> list[str]:
    """CPU: weights + allowances + KV space are more than the host RAM available now."""
    fixed, space, free = s.fixed or 0, s.kv_space or 0, s.start_free
    fixes = [f"free {fmt(s.budget - free)} of host RAM (close other programs or containers)"]
    enough = max(1, math.ceil((needed - fixed) / GIB))  # the GiB that hold the planned context
    spare = (free - fixed) // GIB  # the most whole GiB of KV space the available RAM holds
    if enough * GIB < space and enough <= spare:
        fixes.append(
            f"lower cpu_kv_cache_gib to {enough} ({enough} GiB still holds {context} tokens)"
        )
    elif 1 <= spare < space // GIB and s.bpt:
        fit = largest_context(spare * GIB, s.bpt, s.model_max)
        if fit:
            fixes.append(
                f"lower cpu_kv_cache_gib to {spare} and max_context to {fit} "
                "(what the available RAM holds)"
            )
    if spare < 1:
        fixes += _model_fixes(s)
    return fixes


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


def _model_fixes(s: Sizing) -> list[str]:
    """The weights take most of the memory: a smaller checkpoint."""
    shape = s.shape
    if shape is not None and shape.quant_bits is None and shape.quant_method is None:
        quantized = estimate_weight_bytes(replace(shape, quant_bits=4, quant_group_size=128))
        size = f" (about {fmt(quantized)})" if quantized else ""
        return [f"use a 4-bit AWQ/GPTQ checkpoint of this model{size}"]
    what = "the budget" if s.kv_space is None else "the available RAM"
    return [f"use a smaller model: its weights take most of {what}"]
