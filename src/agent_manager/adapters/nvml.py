"""The only module that imports pynvml (nvidia-ml-py): what the NVIDIA driver reports.

Like gpustat and nvitop, a field the GPU does not support (fan on a passively cooled card,
power on some laptops) becomes None rather than an error; only "no library / no driver / no
GPU" is a failure, and it leaves as one `GpuUnavailableError` sentence with a hint.
Tests replace `get_nvml()` with a fake (tests/fakes/nvml.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any, Protocol

from agent_manager.errors import GpuUnavailableError

NO_GPU_HINT = (
    "Install the NVIDIA driver and check that `nvidia-smi` works; inside a container, start it "
    "with `--gpus all`. To plan without a GPU, use `agent-manager plan --gpu-memory <GiB>`."
)


@dataclass(frozen=True)
class GpuDevice:
    """One GPU as NVML sees it now. None means "not supported by this GPU or driver"."""

    index: int
    name: str
    uuid: str | None
    driver_version: str | None
    cuda_driver_version: str | None  # the newest CUDA the driver supports, e.g. "13.0"
    memory_total_bytes: int
    memory_used_bytes: int
    memory_free_bytes: int
    utilization_percent: int | None
    temperature_c: int | None
    power_draw_w: float | None
    power_limit_w: float | None
    sm_clock_mhz: int | None
    memory_clock_mhz: int | None
    fan_percent: int | None
    # The driver's reserved memory (NVML v2); CUDA's total is total - reserved.
    memory_reserved_bytes: int | None = None


@dataclass(frozen=True)
class GpuProcess:
    """A process holding memory on a GPU. `used_bytes` is None where the driver hides it."""

    gpu_index: int
    pid: int  # a host pid (NVML runs in the host's pid namespace)
    used_bytes: int | None


class Nvml(Protocol):
    def devices(self) -> list[GpuDevice]: ...

    def processes(self) -> list[GpuProcess]: ...


def get_nvml() -> Nvml:
    """NVML, initialised; or GpuUnavailableError saying what is missing."""
    return _RealNvml(_initialised_pynvml())


def reset() -> None:
    """Forget the initialised NVML binding: the next `get_nvml()` imports and initialises it
    again (a driver installed meanwhile, or a test's stand-in `pynvml`)."""
    _initialised_pynvml.cache_clear()


@cache
def _initialised_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError:
        raise GpuUnavailableError(
            "The NVML Python binding (package nvidia-ml-py) is not installed.",
            hint="Reinstall agent-manager, which depends on nvidia-ml-py.",
        ) from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        raise _unavailable(pynvml, error) from None
    return pynvml


def _unavailable(pynvml: ModuleType, error: Exception) -> GpuUnavailableError:
    code = getattr(error, "value", None)
    reasons = {
        pynvml.NVML_ERROR_LIBRARY_NOT_FOUND: "the NVIDIA driver's NVML library "
        "(libnvidia-ml.so) was not found",
        pynvml.NVML_ERROR_DRIVER_NOT_LOADED: "the NVIDIA kernel driver is not loaded",
        pynvml.NVML_ERROR_NO_PERMISSION: "this user may not talk to the NVIDIA driver",
        pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH: "the NVIDIA driver library and kernel "
        "module versions differ (reboot after a driver update)",
    }
    reason = reasons.get(code, f"NVML failed: {error}")
    return GpuUnavailableError(f"No NVIDIA GPU can be read: {reason}.", hint=NO_GPU_HINT)


class _RealNvml:
    def __init__(self, pynvml: ModuleType):
        self._nv = pynvml

    def _handles(self) -> list[object]:
        nv = self._nv
        try:
            count = nv.nvmlDeviceGetCount()
            handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except nv.NVMLError as error:
            raise _unavailable(nv, error) from None
        if not handles:
            raise GpuUnavailableError("The NVIDIA driver reports no GPU.", hint=NO_GPU_HINT)
        return handles

    def _optional(self, read: Callable[..., Any], *args: Any) -> Any:
        """A field some GPUs do not have: None instead of an error (gpustat does the same)."""
        try:
            return read(*args)
        except self._nv.NVMLError:
            return None

    def devices(self) -> list[GpuDevice]:
        nv, opt = self._nv, self._optional
        driver = opt(nv.nvmlSystemGetDriverVersion)
        cuda = opt(nv.nvmlSystemGetCudaDriverVersion)
        found = []
        for index, handle in enumerate(self._handles()):
            try:
                memory = nv.nvmlDeviceGetMemoryInfo(handle)
            except nv.NVMLError as error:
                raise _unavailable(nv, error) from None
            reserved = self._reserved(handle)
            utilization = opt(nv.nvmlDeviceGetUtilizationRates, handle)
            power = opt(nv.nvmlDeviceGetPowerUsage, handle)  # milliwatts
            limit = opt(nv.nvmlDeviceGetEnforcedPowerLimit, handle)
            found.append(
                GpuDevice(
                    index=index,
                    name=_text(opt(nv.nvmlDeviceGetName, handle)) or "NVIDIA GPU",
                    uuid=_text(opt(nv.nvmlDeviceGetUUID, handle)),
                    driver_version=_text(driver),
                    # NVML encodes CUDA 13.0 as 13000.
                    cuda_driver_version=f"{cuda // 1000}.{cuda % 1000 // 10}" if cuda else None,
                    memory_total_bytes=int(memory.total),
                    memory_used_bytes=int(memory.used),
                    memory_free_bytes=int(memory.free),
                    utilization_percent=_int(getattr(utilization, "gpu", None)),
                    temperature_c=_int(
                        opt(nv.nvmlDeviceGetTemperature, handle, nv.NVML_TEMPERATURE_GPU)
                    ),
                    power_draw_w=power / 1000 if power is not None else None,
                    power_limit_w=limit / 1000 if limit is not None else None,
                    sm_clock_mhz=_int(opt(nv.nvmlDeviceGetClockInfo, handle, nv.NVML_CLOCK_SM)),
                    memory_clock_mhz=_int(
                        opt(nv.nvmlDeviceGetClockInfo, handle, nv.NVML_CLOCK_MEM)
                    ),
                    fan_percent=_int(opt(nv.nvmlDeviceGetFanSpeed, handle)),
                    memory_reserved_bytes=reserved,
                )
            )
        return found

    def _reserved(self, handle: object) -> int | None:
        """The driver's reserved memory from NVML v2 memory info; None where there is no v2."""
        version = getattr(self._nv, "nvmlMemory_v2", None)
        if version is None:
            return None
        try:
            memory = self._nv.nvmlDeviceGetMemoryInfo(handle, version=version)
        except (self._nv.NVMLError, TypeError, AttributeError):  # old driver or binding
            return None
        return _int(getattr(memory, "reserved", None))

    def processes(self) -> list[GpuProcess]:
        nv = self._nv
        found: dict[tuple[int, int], GpuProcess] = {}
        for index, handle in enumerate(self._handles()):
            # A process using CUDA and graphics at once is listed by both calls: count it once.
            for reader in (
                nv.nvmlDeviceGetComputeRunningProcesses,
                nv.nvmlDeviceGetGraphicsRunningProcesses,
            ):
                for info in self._optional(reader, handle) or []:
                    used = getattr(info, "usedGpuMemory", None)
                    key = (index, int(info.pid))
                    if key in found and found[key].used_bytes is not None:
                        continue
                    found[key] = GpuProcess(
                        gpu_index=index,
                        pid=int(info.pid),
                        used_bytes=int(used) if used is not None else None,
                    )
        return list(found.values())


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):  # old pynvml versions return bytes
        return value.decode(errors="replace")
    return str(value)
