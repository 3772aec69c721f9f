"""Docker behind a small Protocol: what agent-manager asks of it, and the one factory.

`get_docker()` connects (or says how to start Docker) and returns a `Docker`, as
`adapters/nvml.py` does for NVML; the docker-py implementation is `docker_sdk.py`, the only
importer of the SDK. Containers are found by our labels (`containers.py`), never by guessing
names. Compose is
the real `docker compose` v2 CLI (`compose.py`); the Protocol offers it too, so one replaced
factory (tests/fakes/docker.py) stands in for everything Docker does.
"""

from __future__ import annotations

from functools import cache
from typing import Protocol

from agent_manager.adapters.compose import ComposeFiles, ComposeProcess
from agent_manager.adapters.containers import AgentContainer, EngineInfo, LogLines


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
        self, ws: ComposeFiles, agent: str, *args: str, offline: bool = False
    ) -> ComposeProcess:
        """Start `docker compose ARGS` for one agent's project; its output is a pipe."""
        ...

    def compose_config_hash(
        self, ws: ComposeFiles, agent: str, service: str, offline: bool = False
    ) -> str | None:
        """The config hash Compose would label `service`'s container with now."""
        ...


@cache
def get_docker() -> Docker:
    """Docker, connected; or DockerUnavailableError saying how to start it. Tests replace
    this factory (tests/fakes/docker.py)."""
    from agent_manager.adapters.docker_sdk import connect

    return connect()
