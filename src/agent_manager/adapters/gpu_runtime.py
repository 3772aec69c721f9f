"""Can this machine run the CUDA image? An NVIDIA GPU that NVML reads, and a Docker Engine that
can hand it to a container (the `nvidia` runtime, an NVIDIA CDI spec, or the toolkit's hook).

`engine: auto` asks this once per process (spec/engine_choice.py); `doctor` shows the same
facts one check each.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from agent_manager.errors import AgentManagerError

CDI_DIRS = ("/etc/cdi", "/var/run/cdi")
NVIDIA_HOOKS = ("nvidia-container-runtime-hook", "nvidia-container-runtime", "nvidia-ctk")


def nvidia_cdi_specs(dirs: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        str(p)
        for d in dirs or CDI_DIRS
        if Path(d).is_dir()
        for p in Path(d).glob("nvidia*")
        if p.is_file()
    )


def nvidia_hooks() -> list[str]:
    return [hook for hook in NVIDIA_HOOKS if shutil.which(hook)]


def probe_cuda_runtime() -> tuple[bool, str]:
    """(True, "") when the CUDA image can run here, else (False, why not in a few words)."""
    from agent_manager.adapters import docker, nvml

    try:
        nvml.get_nvml().devices()
    except AgentManagerError:
        return False, "No NVIDIA GPU here (NVML reads none)"
    try:
        info = docker.get_docker().engine_info()
    except AgentManagerError:
        return True, ""  # Docker down: the launch says so; the GPU is there
    if "nvidia" in info.runtimes or nvidia_cdi_specs(info.cdi_spec_dirs) or nvidia_hooks():
        return True, ""
    return False, "Docker has no NVIDIA runtime (see `agent-manager doctor`)"
