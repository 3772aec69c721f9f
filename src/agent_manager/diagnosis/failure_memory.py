"""Pure: failures about memory (context limits, KV cache, free GPU memory, CUDA OOM), and
where in vLLM's start an out-of-memory happened: loading, profiling or CUDA-graph capture."""

from __future__ import annotations

import re

from agent_manager.diagnosis.failure_text import Context, search, spec_file
from agent_manager.diagnosis.phases import GRAPHS, KV_SIZING, LOADING, phase_of


def max_len_above_model(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(
        lines,
        r"User-specified max_model_len \((\d+)\) is greater than the derived "
        r"max_model_len \(([^)]*)\)",
    )
    if match:
        summary = (
            f"max_context {match.group(1)} is longer than the model supports ({match.group(2)})."
        )
    else:
        summary = "max_context is longer than the model supports."
    return summary, f"Lower max_context in {spec_file(ctx)} to the model's limit (or use 'auto')."


def context_too_long(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(
        lines,
        r"max seq len \((\d+)\), \(([\d.]+) GiB KV cache is needed, which is larger than the "
        r"available KV cache memory \(([\d.]+) GiB\)",
    )
    estimate = search(lines, r"estimated maximum model length is (\d+)")
    if match:
        summary = (
            f"The context ({match.group(1)} tokens) needs {match.group(2)} GiB of KV cache but "
            f"only {match.group(3)} GiB is left after the weights."
        )
    else:
        summary = "Not even one request of the full context fits in the KV cache."
    if estimate:
        summary += f" vLLM computed that at most {estimate.group(1)} tokens fit."
        first = f"Set max_context: {estimate.group(1)} (or lower)"
    else:
        first = "Lower max_context"
    if ctx.max_context == "auto":
        # Already on auto: vLLM could not fit even its smallest context.
        return (
            summary,
            f"Raise gpu_memory_fraction in {spec_file(ctx)}, set kv_cache_dtype: fp8 (half the "
            "memory per token), or use a smaller/quantized checkpoint.",
        )
    return (
        summary,
        f"{first} in {spec_file(ctx)}, or raise gpu_memory_fraction, or set kv_cache_dtype: fp8 "
        "(half the memory per token), or use max_context: auto.",
    )


def no_kv_memory(lines: list[str], ctx: Context) -> tuple[str, str]:
    return (
        "No GPU memory is left for the KV cache after loading the weights.",
        f"Raise gpu_memory_fraction in {spec_file(ctx)}, or use a smaller/quantized checkpoint "
        "(AWQ/GPTQ), or set enforce_eager: true to save CUDA-graph memory.",
    )


def free_memory(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(
        lines,
        r"Free memory on device (\S+) \(([\d.]+)/([\d.]+) GiB\) on startup is less than desired "
        r"GPU memory utilization \(([\d.]+), ([\d.]+) GiB\)",
    )
    if match:
        summary = (
            f"Only {match.group(2)} of {match.group(3)} GiB is free on {match.group(1)}, but "
            f"gpu_memory_fraction {match.group(4)} asks for {match.group(5)} GiB."
        )
    else:
        summary = "Less GPU memory is free than gpu_memory_fraction asks for."
    if ctx.gpu_holders:
        summary += " GPU memory is held by: " + "; ".join(ctx.gpu_holders) + "."
    return (
        summary,
        "Free the GPU (close what holds VRAM: see `agent-manager gpu-stats`), or lower "
        f"gpu_memory_fraction in {spec_file(ctx)} below the free share.",
    )


def out_of_memory(lines: list[str], ctx: Context) -> tuple[str, str]:
    warmup = search(lines, r"out of memory occurred when warming up sampler")
    if warmup:
        return (
            "The GPU ran out of memory while warming up (too many sequences at once).",
            f"Lower max_num_seqs or gpu_memory_fraction in {spec_file(ctx)}.",
        )
    tried = search(lines, r"Tried to allocate ([\d.]+ [KMG]iB)")
    extra = f" (it tried to allocate {tried.group(1)} more)" if tried else ""
    stage = _oom_stage(lines)
    if stage == GRAPHS:
        return (
            f"CUDA ran out of memory while capturing CUDA graphs{extra}.",
            f"Set enforce_eager: true in {spec_file(ctx)} (no CUDA graphs), or lower "
            "max_num_seqs (fewer graph sizes), or lower gpu_memory_fraction to leave the "
            "graphs room outside vLLM's budget.",
        )
    if stage == KV_SIZING:
        return (
            f"CUDA ran out of memory while profiling a full batch, after the weights "
            f"loaded{extra}.",
            f"Lower max_num_seqs or max_context in {spec_file(ctx)}, or put "
            "'--max-num-batched-tokens', '2048' in extra_args (a smaller profiling batch).",
        )
    return (
        f"CUDA ran out of memory while loading the model weights{extra}.",
        f"Use a smaller or quantized checkpoint (AWQ/GPTQ/FP8) in {spec_file(ctx)}, lower "
        "max_context, or lower gpu_memory_fraction to leave room for other GPU users; "
        "`agent-manager plan` shows what fits.",
    )


# Traceback frames and log lines that tell where vLLM was when CUDA ran out of memory
# (vllm/v1/worker/gpu_worker.py and gpu_model_runner.py): checked in this order, because a
# graph capture and the memory profile both run `_dummy_run`.
_OOM_STAGES = (
    (re.compile(r"Failed to load model - not enough GPU memory|in load_model\b"), LOADING),
    (re.compile(r"in capture_model\b|_capture_cudagraphs|Capturing CUDA graphs"), GRAPHS),
    (re.compile(r"in profile_run\b|in determine_available_memory\b|_dummy_sampler_run"), KV_SIZING),
)


def _oom_stage(lines: list[str]) -> str:
    """LOADING, GRAPHS or KV_SIZING (profiling): from the traceback, else the last phase seen."""
    for pattern, stage in _OOM_STAGES:
        if any(pattern.search(line) for line in lines):
            return stage
    last = LOADING
    for line in lines:
        if re.search(r"out of memory|OutOfMemoryError", line, re.IGNORECASE):
            break
        phase = phase_of(line)
        if phase == GRAPHS:
            last = GRAPHS
        elif phase is not None and (phase == KV_SIZING or phase.startswith("weights loaded")):
            last = KV_SIZING
    return last
