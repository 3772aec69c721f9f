"""`doctor` for the CPU engine: can this CPU run vLLM's CPU image, and is there RAM for it?

vLLM's CPU build needs AVX-512 or AVX2 on x86 (docs/getting_started/installation/cpu), or an
Arm64 CPU; its images are `vllm/vllm-openai-cpu:<tag>-x86_64` and `-arm64`. A CPU agent holds
its weights and its KV cache (cpu_kv_cache_gib) in RAM.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path

from agent_manager.doctor.verdicts import Check, fail, ok, warn
from agent_manager.spec.agents import CPU_KV_CACHE_GIB
from agent_manager.spec.vllm_args import cpu_arch
from agent_manager.units import GIB

# A 0.5-1.5B model in bf16 (1-3 GiB) plus the default KV space and vLLM itself.
RAM_WARN_GIB = 8.0


def cpu_isa_verdict(machine: str, flags: set[str]) -> Check:
    arch = cpu_arch(machine)
    if arch == "arm64":
        return ok("cpu", f"{machine}: vLLM's CPU image for Arm (-arm64) runs here (engine: cpu).")
    if machine.lower() not in ("x86_64", "amd64"):
        return warn("cpu", f"{machine}: vLLM publishes no CPU image for this architecture.")
    if "avx512f" in flags:
        return ok("cpu", "x86_64 with AVX-512: vLLM's CPU engine runs at its best (engine: cpu).")
    if "avx2" in flags:
        return ok("cpu", "x86_64 with AVX2: vLLM's CPU engine runs (AVX-512 is faster).")
    return fail(
        "cpu",
        "x86_64 without AVX2 or AVX-512: vLLM's CPU engine cannot run here.",
        "Use engine: cuda on a machine with an NVIDIA GPU, or a CPU with AVX2/AVX-512.",
    )


def ram_verdict(total_bytes: int, available_bytes: int) -> Check:
    total, available = total_bytes / GIB, available_bytes / GIB
    detail = f"{available:.1f} of {total:.1f} GiB RAM available"
    if available < RAM_WARN_GIB:
        return warn(
            "ram",
            f"{detail}: a CPU agent keeps its weights and KV cache in RAM.",
            f"Free RAM, or use a small model (0.5-1.5B) and a small cpu_kv_cache_gib "
            f"(default {CPU_KV_CACHE_GIB}) for engine: cpu.",
        )
    return ok("ram", f"{detail} (engine: cpu holds weights + cpu_kv_cache_gib in RAM).")


def cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def meminfo_bytes(meminfo: str) -> tuple[int, int]:
    """(MemTotal, MemAvailable) from /proc/meminfo's kB figures."""
    values = {}
    for line in meminfo.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * 1024
    return values.get("MemTotal", 0), values.get("MemAvailable", values.get("MemFree", 0))


def check_cpu() -> list[Check]:
    try:
        flags = cpu_flags(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        flags = set()
    return [cpu_isa_verdict(platform.machine(), flags)]


def check_ram() -> list[Check]:
    try:
        total, available = meminfo_bytes(Path("/proc/meminfo").read_text(encoding="utf-8"))
    except OSError as error:
        return [warn("ram", f"RAM not read ({error.strerror or error}): Linux /proc only.")]
    return [ram_verdict(total, available)]


def cpu_checks() -> list[tuple[str, Callable[[], list[Check]]]]:
    return [("cpu", check_cpu), ("ram", check_ram)]
