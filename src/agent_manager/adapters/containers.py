"""What a container of ours is: the labels we put on it, the Compose project it belongs to,
and `AgentContainer`, as Docker reports it. Shared by the `Docker` Protocol (`docker.py`), its
docker-py implementation (`docker_sdk.py`) and the compose renderer, which writes the labels.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from agent_manager.errors import UsageError

LABEL_AGENT = "io.agent-manager.agent"
LABEL_SPEC_HASH = "io.agent-manager.spec-hash"
LABEL_PORT = "io.agent-manager.port"
LABEL_SERVED = "io.agent-manager.served-name"

INSTANCE_ENV = "AGENT_MANAGER_INSTANCE"
DEFAULT_INSTANCE = "agent-manager"
# What a Compose project name accepts (and an agent name, see spec/workspace.py).
_PROJECT_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def instance_name() -> str:
    """Prefix of the Compose project names this tool manages (`<instance>-<agent>`).

    Every command of one instance sees the same containers; tests use their own instance so
    they never touch a user's agents.
    """
    value = os.environ.get(INSTANCE_ENV, DEFAULT_INSTANCE)
    if not _PROJECT_PREFIX.match(value):
        raise UsageError(f"{INSTANCE_ENV}='{value}' is not a valid Compose project prefix.")
    return value


def project_name(agent: str) -> str:
    return f"{instance_name()}-{agent}"


DOCKER_DOWN_HINT = (
    "Start the Docker Engine (`sudo systemctl start docker`, or Docker Desktop) and check that "
    "`docker info` works for your user (add yourself to the 'docker' group, then log in again)."
)
PROJECT_LABEL = "com.docker.compose.project"


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
