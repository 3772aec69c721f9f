"""What is on the GPU now, and which of our agents holds it.

NVML reports host pids. A pid's `/proc/<pid>/cgroup` names the Docker container it runs in;
our containers carry the agent label, so "pid 4711, 14.1 GiB" becomes "po: 14.1 GiB".
Docker being unreachable only loses the agent names (with a note), never the snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel

from agent_manager.adapters import nvml
from agent_manager.errors import AgentManagerError
from agent_manager.units import format_bytes

# Where host pids are looked up; tests point it at a fake tree.
PROC_ROOT = Path("/proc")

# cgroup v1: ".../docker/<id>"; cgroup v2 with the systemd driver: ".../docker-<id>.scope";
# cgroup v2 with the cgroupfs driver and rootless/nested setups: ".../docker/<id>" again.
_CONTAINER_ID = re.compile(r"(?:/docker[/-]|/libpod-|/cri-containerd-)([0-9a-f]{64})(?:\.scope)?")


class GpuProcessInfo(BaseModel):
    gpu_index: int
    pid: int
    used_bytes: int | None
    container_id: str | None  # 12-character short id, as `docker ps` shows it
    container_name: str | None
    agent: str | None

    def label(self) -> str:
        """How a user recognises the process: agent, else container, else pid."""
        if self.agent:
            return self.agent
        if self.container_name:
            return f"container {self.container_name}"
        return f"pid {self.pid}"


class GpuSnapshot(BaseModel):
    """`gpu-stats` output: every GPU and every process holding memory on one."""

    gpus: list[nvml.GpuDevice]  # NVML's reading as it is: one shape from adapter to --json
    processes: list[GpuProcessInfo]
    notes: list[str] = []


def container_id_of(pid: int, proc_root: Path | None = None) -> str | None:
    """The full id of the container `pid` runs in, from its cgroup file; None on the host."""
    proc_root = proc_root or PROC_ROOT
    try:
        text = (proc_root / str(pid) / "cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:  # gone already, or another user's process under hidepid
        return None
    match = _CONTAINER_ID.search(text)
    return match.group(1) if match else None


ContainerLister = Callable[[], Iterable[object]]


def _docker_containers() -> list[object]:
    from agent_manager.adapters import docker

    return list(docker.get_docker().list_agent_containers(include_stopped=False))


def take_snapshot(
    proc_root: Path | None = None,
    list_containers: ContainerLister | None = None,
) -> GpuSnapshot:
    """Read NVML (GpuUnavailableError when it cannot) and attribute processes to agents."""
    backend = nvml.get_nvml()
    devices = backend.devices()
    processes = backend.processes()
    notes: list[str] = []
    containers: dict[str, tuple[str, str]] = {}  # full id -> (name, agent)
    ids = {p.pid: container_id_of(p.pid, proc_root) for p in processes}
    if any(ids.values()):
        # Docker is asked only when some process runs in a container: the common idle case
        # stays free of the Docker SDK's import and round trip.
        try:
            for container in (list_containers or _docker_containers)():
                containers[str(getattr(container, "id", ""))] = (
                    str(getattr(container, "name", "")),
                    str(getattr(container, "agent", "")),
                )
        except AgentManagerError as error:
            notes.append(f"Agent names unknown: {error.message}")
        except Exception as error:  # noqa: BLE001 - a Docker API hiccup must not hide the GPU
            notes.append(f"Agent names unknown: Docker answered {type(error).__name__}: {error}")
    rows = []
    for process in sorted(processes, key=lambda p: (p.gpu_index, -(p.used_bytes or 0), p.pid)):
        cid = ids.get(process.pid)
        name, agent = containers.get(cid, ("", "")) if cid else ("", "")
        rows.append(
            GpuProcessInfo(
                gpu_index=process.gpu_index,
                pid=process.pid,
                used_bytes=process.used_bytes,
                container_id=cid[:12] if cid else None,
                container_name=name or None,
                agent=agent or None,
            )
        )
    return GpuSnapshot(gpus=list(devices), processes=rows, notes=notes)


# Bytes as GiB for people, under the name the runtime and gpu commands use.
gib = format_bytes


def container_rss_bytes(container_id: str, proc_root: Path | None = None) -> int | None:
    """Resident memory of the container's processes (pinned host memory counts); None when
    none of them can be read here."""
    from agent_manager.adapters import host

    pids = [pid for pid in host.process_ids() if container_id_of(pid, proc_root) == container_id]
    return host.resident_bytes(pids)
