"""The only place that uses the Docker SDK (`docker compose` itself is run by compose.py).

Compose is driven through the real `docker compose` v2 CLI (never reimplemented); the SDK is
used to find and inspect our containers by label. Tests replace `get_docker()`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from agent_manager.compose.render import LABEL_AGENT, LABEL_PORT, LABEL_SERVED, LABEL_SPEC_HASH
from agent_manager.errors import DockerUnavailableError
from agent_manager.spec.workspace import instance_name

if TYPE_CHECKING:
    import docker

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


@cache
def get_docker() -> docker.DockerClient:
    """A connected Docker SDK client, or a message that says how to start Docker."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except DockerException as error:
        raise DockerUnavailableError(
            f"Cannot reach the Docker Engine: {_why_unreachable(error)}.", hint=DOCKER_DOWN_HINT
        ) from None
    return client


def _why_unreachable(error: BaseException) -> str:
    """docker-py's error in words: which socket, and whether it is missing or forbidden."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    text = str(error)
    if "FileNotFoundError" in text or "No such file or directory" in text:
        return f"nothing at {where} (the Docker Engine is not running)"
    if "PermissionError" in text or "Permission denied" in text:
        return f"permission denied on {where}"
    if "Connection refused" in text:
        return f"connection refused at {where}"
    return _first_line(error)


def list_agent_containers(include_stopped: bool = True) -> list[AgentContainer]:
    """Every container of this instance that carries our agent label, newest first."""
    from docker.errors import NotFound

    client = get_docker()
    prefix = instance_name() + "-"
    # Other instances' containers carry the label too: pick ours from the plain list, then
    # inspect only those (a switch lists twice; inspecting everyone's costs tenths of a second).
    listed = client.containers.list(
        all=include_stopped, filters={"label": LABEL_AGENT}, sparse=True
    )
    found = []
    for container in listed:
        project = (container.attrs.get("Labels") or {}).get(PROJECT_LABEL, "")
        if not project.startswith(prefix):
            continue
        try:
            container.reload()
        except NotFound:
            continue  # removed between the list and the inspect
        found.append(_agent_container(container))
    found.sort(key=lambda c: c.started_at or "", reverse=True)
    return found


def _agent_container(container: Any) -> AgentContainer:
    attrs: dict[str, Any] = container.attrs
    labels: dict[str, str] = attrs.get("Config", {}).get("Labels") or {}
    state = attrs.get("State", {})
    port = labels.get(LABEL_PORT)
    return AgentContainer(
        id=container.id or "",
        name=container.name or "",
        agent=labels.get(LABEL_AGENT, ""),
        project=labels.get(PROJECT_LABEL, ""),
        state=state.get("Status", "unknown"),
        exit_code=state.get("ExitCode"),
        started_at=state.get("StartedAt"),
        finished_at=state.get("FinishedAt"),
        port=int(port) if port and port.isdigit() else None,
        served_name=labels.get(LABEL_SERVED),
        spec_hash=labels.get(LABEL_SPEC_HASH),
        labels=labels,
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --- one container: inspect, logs, stop, remove (used by launch / stop / status / logs) ---


def agent_container(container_id: str) -> AgentContainer | None:
    """The container as Docker reports it now, or None once it is gone."""
    from docker.errors import NotFound

    try:
        return _agent_container(get_docker().containers.get(container_id))
    except NotFound:
        return None


class LogStream:
    """A container's log as text lines (stdout and stderr interleaved), closable from outside.

    Closing ends a blocked `follow` read at once, which is how a watcher thread is stopped.
    """

    def __init__(
        self,
        container_id: str,
        *,
        follow: bool,
        tail: int | None = None,
        since: float | None = None,
        split_cr: bool = False,
    ):
        from docker.errors import NotFound

        self._separator = re.compile(rb"\r\n|\r|\n" if split_cr else rb"\n")

        kwargs: dict[str, Any] = {"stream": True, "follow": follow, "tail": tail or "all"}
        if since is not None:
            # Epoch seconds as a float: the SDK turns a datetime into whole seconds.
            kwargs["since"] = float(since)
        try:
            self._raw = get_docker().containers.get(container_id).logs(**kwargs)
        except NotFound:
            self._raw = iter(())

    def __iter__(self) -> Any:
        pending = b""
        try:
            for chunk in self._raw:
                pending += chunk
                *lines, pending = self._separator.split(pending)
                for line in lines:
                    yield line.decode("utf-8", errors="replace").rstrip("\r")
        except Exception:  # noqa: BLE001 - a closed or broken stream simply ends the log
            pass
        if pending:
            yield pending.decode("utf-8", errors="replace").rstrip("\r")

    def close(self) -> None:
        close = getattr(self._raw, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001 - closing twice or after EOF is harmless
                pass


def log_lines(container_id: str, tail: int | None = None) -> list[str]:
    """The container's log so far (the last `tail` lines when given)."""
    return list(LogStream(container_id, follow=False, tail=tail))


def stop_container(container_id: str, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after `grace_s` (vLLM drains in-flight requests on SIGTERM)."""
    from docker.errors import APIError, NotFound

    try:
        get_docker().containers.get(container_id).stop(timeout=max(1, round(grace_s)))
    except NotFound:
        return
    except APIError as error:
        if error.status_code not in (304, 404, 409):  # already stopped / gone / being removed
            raise


def remove_container(container_id: str) -> None:
    """Remove the container (and its anonymous volumes); nothing to do if it is gone."""
    from docker.errors import APIError, NotFound

    try:
        get_docker().containers.get(container_id).remove(force=True, v=True)
    except NotFound:
        return
    except APIError as error:
        # 409: removal already in progress (another stop raced us); it will be gone shortly.
        if error.status_code not in (404, 409):
            raise


def remove_project_networks(project: str) -> None:
    """Remove the networks Compose created for `project` once no container uses them."""
    from docker.errors import APIError, NotFound

    client = get_docker()
    for network in client.networks.list(filters={"label": f"{PROJECT_LABEL}={project}"}):
        try:
            network.remove()
        except (NotFound, APIError):
            continue  # in use by a new container of the same project, or already gone


def port_publishers(port: int) -> list[str]:
    """Running containers that publish host port `port`, as "container NAME (image IMAGE)"."""
    client = get_docker()
    found = []
    for container in client.containers.list(ignore_removed=True):
        ports = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
        for bindings in ports.values():
            if any(str(b.get("HostPort")) == str(port) for b in bindings or []):
                image = container.attrs.get("Config", {}).get("Image", "?")
                found.append(f"container {container.name} (image {image})")
                break
    return found


@dataclass(frozen=True)
class EngineInfo:
    """What the Docker Engine says about itself (`docker version` / `docker info`)."""

    version: str
    api_version: str
    runtimes: tuple[str, ...]
    default_runtime: str | None
    cdi_spec_dirs: tuple[str, ...]  # empty on engines before 25 (no CDI support)


def engine_info() -> EngineInfo:
    client = get_docker()
    try:
        version: dict[str, Any] = client.version()
        info: dict[str, Any] = client.info()
    except Exception as error:  # noqa: BLE001 - docker raises several unrelated types here
        raise DockerUnavailableError(
            f"The Docker Engine did not describe itself ({_first_line(error)}).",
            hint=DOCKER_DOWN_HINT,
        ) from None
    return EngineInfo(
        version=str(version.get("Version", "unknown")),
        api_version=str(version.get("ApiVersion", "unknown")),
        runtimes=tuple(sorted(info.get("Runtimes") or {})),
        default_runtime=info.get("DefaultRuntime"),
        cdi_spec_dirs=tuple(info.get("CDISpecDirs") or ()),
    )


def image_present(reference: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        get_docker().images.get(reference)
    except ImageNotFound:
        return False
    return True
