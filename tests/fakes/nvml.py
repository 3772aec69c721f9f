"""Fake NVML for tests, at two depths.

- `FakeNvml` replaces `agent_manager.adapters.nvml.get_nvml` (what commands and launch see):
  queued scenarios, each a list of devices and processes. `processes()` moves on to the next
  scenario after answering (the last one stays), so a wait loop sees VRAM being freed.
- `FakePynvml` stands in for the `pynvml` module itself, to test the adapter's own code:
  unsupported fields, duplicate processes, missing library.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import pytest

from agent_manager.adapters import nvml
from agent_manager.adapters.nvml import GpuDevice, GpuProcess
from agent_manager.errors import GpuUnavailableError

GIB = 1024**3


def device(
    index: int = 0,
    name: str = "NVIDIA GeForce RTX 4080",
    total_gib: float = 16,
    used_gib: float = 0.5,
    **fields: Any,
) -> GpuDevice:
    total, used = int(total_gib * GIB), int(used_gib * GIB)
    base = GpuDevice(
        index=index,
        name=name,
        uuid=f"GPU-0000000{index}-fake",
        driver_version="580.95.05",
        cuda_driver_version="13.0",
        memory_total_bytes=total,
        memory_used_bytes=used,
        memory_free_bytes=total - used,
        utilization_percent=37,
        temperature_c=61,
        power_draw_w=182.5,
        power_limit_w=320.0,
        sm_clock_mhz=2505,
        memory_clock_mhz=11201,
        fan_percent=45,
    )
    return replace(base, **fields)


def process(pid: int, used_gib: float | None, gpu_index: int = 0) -> GpuProcess:
    used = int(used_gib * GIB) if used_gib is not None else None
    return GpuProcess(gpu_index=gpu_index, pid=pid, used_bytes=used)


@dataclass
class Scenario:
    devices: list[GpuDevice]
    processes: list[GpuProcess] = field(default_factory=list)


class FakeNvml:
    def __init__(self, *scenarios: Scenario):
        self.scenarios = list(scenarios) or [Scenario([device()])]
        self.calls = 0

    def devices(self) -> list[GpuDevice]:
        return list(self.scenarios[0].devices)

    def processes(self) -> list[GpuProcess]:
        self.calls += 1
        current = self.scenarios[0]
        if len(self.scenarios) > 1:
            self.scenarios.pop(0)
        return list(current.processes)


def install(monkeypatch: pytest.MonkeyPatch, *scenarios: Scenario) -> FakeNvml:
    """Make every `nvml.get_nvml()` answer from these scenarios."""
    fake = FakeNvml(*scenarios)
    monkeypatch.setattr(nvml, "get_nvml", lambda: fake)
    return fake


def install_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without the NVIDIA driver, as the real adapter reports it."""

    def unavailable() -> FakeNvml:
        raise GpuUnavailableError(
            "No NVIDIA GPU can be read: the NVIDIA driver's NVML library (libnvidia-ml.so) "
            "was not found.",
            hint=nvml.NO_GPU_HINT,
        )

    monkeypatch.setattr(nvml, "get_nvml", unavailable)


class NVMLError(Exception):
    def __init__(self, value: int):
        super().__init__(f"NVML error {value}")
        self.value = value


class FakePynvml(SimpleNamespace):
    """Just enough of `pynvml` for the adapter; `unsupported` names functions that raise
    NOT_SUPPORTED, `init_error` makes nvmlInit fail with that NVML code."""

    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_NO_PERMISSION = 4
    NVML_ERROR_DRIVER_NOT_LOADED = 9
    NVML_ERROR_LIBRARY_NOT_FOUND = 12
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVMLError = NVMLError

    def __init__(
        self,
        count: int = 1,
        unsupported: tuple[str, ...] = (),
        init_error: int | None = None,
        compute: list[tuple[int, int | None]] | None = None,
        graphics: list[tuple[int, int | None]] | None = None,
    ):
        super().__init__()
        self.count = count
        self.unsupported = unsupported
        self.init_error = init_error
        self.compute = compute or []
        self.graphics = graphics or []

    def _call(self, name: str, value: Any) -> Any:
        if name in self.unsupported:
            raise NVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        return value

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        if self.init_error is not None:
            raise NVMLError(self.init_error)

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        return self._call("nvmlSystemGetDriverVersion", "580.95.05")

    def nvmlSystemGetCudaDriverVersion(self) -> int:  # noqa: N802
        return self._call("nvmlSystemGetCudaDriverVersion", 13000)

    def nvmlDeviceGetName(self, handle: int) -> str:  # noqa: N802
        return self._call("nvmlDeviceGetName", "NVIDIA GeForce RTX 4080")

    def nvmlDeviceGetUUID(self, handle: int) -> str:  # noqa: N802
        return self._call("nvmlDeviceGetUUID", f"GPU-{handle}")

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(total=16 * GIB, used=2 * GIB, free=14 * GIB)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:  # noqa: N802
        return self._call("nvmlDeviceGetUtilizationRates", SimpleNamespace(gpu=12, memory=3))

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:  # noqa: N802
        return self._call("nvmlDeviceGetTemperature", 55)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:  # noqa: N802
        return self._call("nvmlDeviceGetPowerUsage", 95_500)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:  # noqa: N802
        return self._call("nvmlDeviceGetEnforcedPowerLimit", 320_000)

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:  # noqa: N802
        return self._call("nvmlDeviceGetClockInfo", 2505 if clock == self.NVML_CLOCK_SM else 11201)

    def nvmlDeviceGetFanSpeed(self, handle: int) -> int:  # noqa: N802
        return self._call("nvmlDeviceGetFanSpeed", 30)

    def _procs(self, entries: list[tuple[int, int | None]]) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in entries]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:  # noqa: N802
        return self._procs(self.compute)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list[SimpleNamespace]:  # noqa: N802
        return self._procs(self.graphics)


def install_pynvml(monkeypatch: pytest.MonkeyPatch, fake: FakePynvml) -> None:
    """Make `import pynvml` inside the adapter return `fake`. The adapter caches its
    initialised module: callers call `nvml.reset()` after the test too."""
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", fake)
    nvml.reset()
