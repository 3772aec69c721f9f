"""Pure: what the CPU engine's start failures and the sleep-mode refusal mean.

The texts are vLLM's own: `ModelConfig` (vllm/config/model.py) refuses sleep mode where the
platform has none (the CPU engine) with "Sleep mode is not supported on current platform.";
the CPU worker (vllm/v1/worker/cpu_worker.py, 0.32 and 0.33) refuses a KV cache larger than
the NUMA node's available RAM ("Available memory on node N (A/T GiB) on kv cache allocation is
less than requested memory for kv (R GiB)"), and 0.33 refuses a reservation its own weights
already fill ("... leaving none for the KV cache"). Recorded from the real vLLM 0.32 CPU
server in tests/fixtures/vllm-0.32-cpu/ where it can produce them.
"""

from __future__ import annotations

from agent_manager.diagnosis.failure_text import Context, search, spec_file

SLEEP_UNSUPPORTED = r"Sleep mode is not supported on current platform"
CPU_KV_SPACE = r"Available memory on node \d+ .*less than requested memory for kv"
CPU_KV_NONE = r"leaving none for the KV cache"


def sleep_unsupported(lines: list[str], ctx: Context) -> tuple[str, str]:
    return (
        "vLLM's CPU engine has no sleep mode, so it refused to start "
        '("Sleep mode is not supported on current platform").',
        f"Set 'switch: cold' in {spec_file(ctx)} (agent-manager never renders sleep mode for "
        "engine: cpu; if your override file or extra_args add --enable-sleep-mode, remove it).",
    )


def cpu_kv_space(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(
        lines,
        r"Available memory on node (\d+) \(([\d.]+)/([\d.]+) GiB\) on kv cache allocation is "
        r"less than requested memory for kv \(([\d.]+)(?:/[\d.]+)? GiB\)",
    )
    if match is None:
        summary = "The CPU engine could not reserve its KV cache: too little host RAM is free."
    else:
        node, free, total, asked = match.groups()
        summary = (
            f"The CPU engine's KV cache asks for {_gib(asked)} GiB of host RAM, but only "
            f"{_gib(free)} of {_gib(total)} GiB is available on NUMA node {node}."
        )
    return (
        summary,
        f"Lower cpu_kv_cache_gib in {spec_file(ctx)} (it sets VLLM_CPU_KVCACHE_SPACE) below the "
        "available RAM, or free host RAM (other agents, level-1 sleepers: `agent-manager "
        "status`).",
    )


def cpu_kv_none(lines: list[str], ctx: Context) -> tuple[str, str]:
    match = search(
        lines, r"worker already uses ([\d.]+) GiB .*more than the ([\d.]+) GiB of CPU memory"
    )
    used = f" ({_gib(match.group(1))} GiB for weights and runtime)" if match else ""
    reserved = f" of {_gib(match.group(2))} GiB" if match else ""
    return (
        f"The CPU engine's own footprint{used} already fills its reservation{reserved}, "
        "leaving nothing for the KV cache.",
        f"Set cpu_kv_cache_gib in {spec_file(ctx)} (VLLM_CPU_KVCACHE_SPACE; agent-manager "
        "always sets it unless env: overrides it), or use a smaller checkpoint.",
    )


def _gib(text: str) -> str:
    value = float(text)
    return f"{value:.0f}" if value.is_integer() else f"{value:.2f}".rstrip("0")
