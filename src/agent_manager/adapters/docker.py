"""Docker behind a small Protocol: what agent-manager asks of it, and the one factory.

`get_docker()` connects (or says how to start Docker) and returns a `Docker`, as
`adapters/nvml.py` does for NVML; the docker-py implementation is `docker_sdk.py`, the only
importer of the SDK. Containers are found by our labels, never by guessing names. Compose is
the real `docker compose` v2 CLI (`compose.py`); the Protocol offers it too, so one replaced
factory (tests/fakes/docker.py) stands in for everything Docker does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from agent_manager.adapters.compose import ComposeProcess
from agent_manager.errors import DockerUnavailableError
from agent_manager.spec.workspace import Workspace

DOCKER_DOWN_HINT = (
    "Start the Docker Engine (`sudo systemctl start docker`, or Docker Desktop) and check that "
    "`docker info` works for your user (add yourself to the 'docker' group, then log in again)."
)
PROJECT_LABEL = "com.docker.compose.project"
DOCKER_SILENT = "Docker is not answering"
_DOCKER_TRANSPORT = frozenset({"docker", "requests", "urllib3"})


def is_docker_fault(error: BaseException) -> bool:
    """An error of docker-py or of the HTTP stack under it (the socket gone, a hung daemon):
    the engine did not answer, whatever urllib3's wording."""
    return any(cls.__module__.split(".")[0] in _DOCKER_TRANSPORT for cls in type(error).__mro__)


def docker_fault(error: BaseException) -> DockerUnavailableError:
    """A docker-py failure in words; only the error's type name of the raw text."""
    name = type(error).__name__
    hung = "timeout" in name.lower() or "timed out" in str(error)
    return DockerUnavailableError(
        f"{DOCKER_SILENT} ({'no answer in time' if hung else 'connection lost'}: {name}).",
        hint=DOCKER_DOWN_HINT,
    )


@dataclass(frozen=True)
class AgentContainer:
    """One container of ours, as Docker reports it."""

    id: str
    name: str
    agent: str
    project: str
    state: str  # created, running, restarting, exited, dead, ...
    exit_code: int | None
    started_at: str | None
    finished_at: str | None
    port: int | None
    served_name: str | None
    spec_hash: str | None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting")


@dataclass(frozen=True)
class EngineInfo:
    """What the Docker Engine says about itself (`docker version` / `docker info`)."""

    version: str
    api_version: str
    runtimes: tuple[str, ...]
    default_runtime: str | None
    cdi_spec_dirs: tuple[str, ...]  # empty on engines before 25 (no CDI support)


class LogLines(Protocol):
    """A container's log as text lines; `close()` ends a blocked follow at once."""

    def __iter__(self) -> Iterator[str]: ...

    def close(self) -> None: ...


class Docker(Protocol):
    """Everything agent-manager asks of Docker."""

    def list_agent_containers(self, include_stopped: bool = True) -> list[AgentContainer]:
        """Every container of this instance that carries our agent label, newest first."""
        ...

    def agent_container(self, container_id: str) -> AgentContainer | None:
        """The container as Docker reports it now, or None once it is gone."""
        ...

    def log_stream(
        self,
        container_id: str,
        *,
        follow: bool,
        tail: int | None = None,
        since: float | None = None,
        split_cr: bool = False,
    ) -> LogLines: ...

    def log_lines(self, container_id: str, tail: int | None = None) -> list[str]: ...

    def stop_container(self, container_id: str, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after `grace_s`; nothing to do if it is gone or stopped."""
        ...

    def remove_container(self, container_id: str) -> None: ...

    def remove_project_networks(self, project: str) -> None: ...

    def port_publishers(self, port: int) -> list[str]:
        """Running containers that publish host `port`, as "container NAME (image IMAGE)"."""
        ...

    def image_present(self, reference: str) -> bool: ...

    def engine_info(self) -> EngineInfo: ...

    def ensure_compose(self) -> None:
        """DockerUnavailableError unless the Compose v2 CLI is installed."""
        ...

    def start_compose(
        self, ws: Workspace, agent: str, *args: str, offline: bool = False
    ) -> ComposeProcess:
        """Start `docker compose ARGS` for one agent's project; its output is a pipe."""
        ...

    def compose_config_hash(
        self, ws: Workspace, agent: str, service: str, offline: bool = False
    ) -> str | None:
        """The config hash Compose would label `service`'s container with now."""
        ...


@cache
def get_docker() -> Docker:
    """Docker, connected; or DockerUnavailableError saying how to start it. Tests replace
    this factory (tests/fakes/docker.py)."""
    from agent_manager.adapters.docker_sdk import connect

    return connect()
