"""Waiting until a stopped agent's GPU memory is really free, and naming who holds GPU memory.

A container is gone well before the driver has released its memory; starting the next vLLM in
that gap makes it size its KV cache against memory that is about to be free, or fail. So the
switch notes the GPU processes of the containers it stops (NVML pid → container by cgroup) and
waits, polling NVML, until they are gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from agent_manager.adapters import nvml as nvml_adapter
from agent_manager.adapters.docker import AgentContainer
from agent_manager.errors import GpuUnavailableError, LaunchError
from agent_manager.observe import gpu
from agent_manager.observe.gpu import container_id_of, gib
from agent_manager.units import MIB

VRAM_POLL_S = 0.25
VRAM_TIMEOUT_S = 60.0
# Without attributable processes, how long to look for used memory dropping before moving on.
VRAM_UNATTRIBUTED_S = 5.0
# Less than this is noise, not memory given back (a sleep, or a stopped engine).
VRAM_DROP_BYTES = 256 * MIB

Say = Callable[[str], None]


@dataclass
class GpuWatch:
    """GPU processes of the containers being stopped, to wait until their memory is free."""

    nvml: nvml_adapter.Nvml
    pids: dict[int, int]  # pid -> bytes it held
    used_before: int

    @classmethod
    def before_stop(cls, containers: list[AgentContainer], say: Say) -> GpuWatch | None:
        """Note what the running `containers` hold now; None when there is nothing to wait for."""
        if not containers:
            return None
        try:
            nvml = nvml_adapter.get_nvml()
            processes = nvml.processes()
            used = sum(device.memory_used_bytes for device in nvml.devices())
        except GpuUnavailableError:
            say("NVML unavailable: not waiting for GPU memory.")
            return None
        return cls(nvml, held_by(processes, {c.id for c in containers}), used)

    def wait_until_free(self, say: Say, deadline: float) -> None:
        """Return once the noted processes are gone; LaunchError after VRAM_TIMEOUT_S (or at
        `deadline`, time.monotonic(), if sooner)."""
        until = min(deadline, time.monotonic() + VRAM_TIMEOUT_S)
        told = False
        settle_until = time.monotonic() + VRAM_UNATTRIBUTED_S
        while True:
            try:
                processes = self.nvml.processes()
                used = sum(device.memory_used_bytes for device in self.nvml.devices())
            except GpuUnavailableError:
                return
            held = [p for p in processes if p.pid in self.pids]
            if self.pids and not held:
                return
            if not self.pids and (
                dropped(used, self.used_before) or time.monotonic() > settle_until
            ):
                return  # nothing attributable: a short look for the drop, then go on
            if time.monotonic() > until:
                names = ", ".join(f"pid {p.pid} ({gib(p.used_bytes)})" for p in held)
                raise LaunchError(
                    f"The stopped agent's GPU memory is still held by {names} after "
                    f"{VRAM_TIMEOUT_S:.0f} s.",
                    hint="See `agent-manager gpu-stats` or `nvidia-smi`; end that process, "
                    "then launch again.",
                )
            if not told:
                say("Waiting for the GPU memory of the stopped agent to be freed...")
                told = True
            time.sleep(VRAM_POLL_S)


def held_by(processes: list[nvml_adapter.GpuProcess], container_ids: set[str]) -> dict[int, int]:
    """pid → GPU bytes, for the processes that belong to `container_ids` (by cgroup)."""
    return {p.pid: p.used_bytes or 0 for p in processes if container_id_of(p.pid) in container_ids}


def container_gpu_bytes(container_id: str) -> int | None:
    """GPU memory the container's processes hold now; None where NVML cannot tell."""
    try:
        processes = nvml_adapter.get_nvml().processes()
    except GpuUnavailableError:
        return None
    held = held_by(processes, {container_id})
    return sum(held.values()) if held else None


def dropped(now: int | None, before: int) -> bool:
    """Whether GPU memory fell by a real amount (or can no longer be seen)."""
    return now is None or now <= before - VRAM_DROP_BYTES


def gpu_holders() -> list[str]:
    """Every process holding GPU memory, as "pid N (name): X GiB"; [] without NVML."""
    try:
        processes = nvml_adapter.get_nvml().processes()
    except GpuUnavailableError:
        return []
    found = []
    for process in processes:
        try:
            comm = (gpu.PROC_ROOT / str(process.pid) / "comm").read_text().strip()
        except OSError:
            comm = "?"
        found.append(f"pid {process.pid} ({comm}): {gib(process.used_bytes)}")
    return found
