"""The only importer of the Docker SDK (docker-py): `Docker` over a docker-py client.

`connect()` is what `adapters.docker.get_docker()` returns in real use; everything else asks
the `Docker` Protocol, so tests replace the factory and never see this module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from agent_manager.adapters import compose
from agent_manager.adapters.compose import ComposeFiles, ComposeProcess
from agent_manager.adapters.containers import (
    DOCKER_DOWN_HINT,
    LABEL_AGENT,
    LABEL_PORT,
    LABEL_SERVED,
    LABEL_SPEC_HASH,
    PROJECT_LABEL,
    AgentContainer,
    EngineInfo,
    LogLines,
    instance_name,
)
from agent_manager.errors import DockerUnavailableError


def connect() -> SdkDocker:
    """Docker, connected; or DockerUnavailableError saying how to start it."""
    import docker
    from docker.errors import DockerException

    try:
        # Without a version, docker-py asks the engine for its API version (GET /version) at
        # once: that request is the reachability check, so no ping follows it (one round
        # trip less per command). The version stays negotiated: Docker 29 refuses APIs
        # below 1.44, engines before 26 refuse 1.45, so no fixed one fits every engine.
        client = docker.from_env(timeout=30)
    except DockerException as error:
        raise DockerUnavailableError(
            f"Cannot reach the Docker Engine: {_why_unreachable(error)}.", hint=DOCKER_DOWN_HINT
        ) from None
    return SdkDocker(client)


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


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class SdkDocker:
    """`Docker` over a docker-py client (any object with its `containers`/`networks` API)."""

    def __init__(self, client: Any):
        self._client = client

    def list_agent_containers(self, include_stopped: bool = True) -> list[AgentContainer]:
        from docker.errors import NotFound

        prefix = instance_name() + "-"
        # The label filter also lists other instances' containers (parallel test runs, a
        # second checkout): pick ours from the plain listing, then inspect only those (a
        # switch lists twice; inspecting everyone's costs tenths of a second). One removed
        # between the listing and its inspect is skipped.
        listed = self._client.containers.list(
            all=include_stopped, filters={"label": LABEL_AGENT}, sparse=True
        )
        found = []
        for container in listed:
            if not (container.attrs.get("Labels") or {}).get(PROJECT_LABEL, "").startswith(prefix):
                continue
            try:
                container.reload()
            except NotFound:
                continue
            found.append(_agent_container(container))
        found.sort(key=lambda c: c.started_at or "", reverse=True)
        return found

    def agent_container(self, container_id: str) -> AgentContainer | None:
        from docker.errors import NotFound

        try:
            return _agent_container(self._client.containers.get(container_id))
        except NotFound:
            return None

    def log_stream(
        self,
        container_id: str,
        *,
        follow: bool,
        tail: int | None = None,
        since: float | None = None,
        split_cr: bool = False,
    ) -> LogLines:
        from docker.errors import NotFound

        kwargs: dict[str, Any] = {"stream": True, "follow": follow, "tail": tail or "all"}
        if since is not None:
            # Epoch seconds as a float: the SDK turns a datetime into whole seconds.
            kwargs["since"] = float(since)
        try:
            raw = self._client.containers.get(container_id).logs(**kwargs)
        except NotFound:
            raw = iter(())
        return LogStream(raw, split_cr=split_cr)

    def log_lines(self, container_id: str, tail: int | None = None) -> list[str]:
        return list(self.log_stream(container_id, follow=False, tail=tail))

    def stop_container(self, container_id: str, grace_s: float) -> None:
        # vLLM drains in-flight requests on SIGTERM.
        from docker.errors import APIError, NotFound

        try:
            self._client.containers.get(container_id).stop(timeout=max(1, round(grace_s)))
        except NotFound:
            return
        except APIError as error:
            if error.status_code not in (304, 404, 409):  # already stopped / gone / removing
                raise

    def remove_container(self, container_id: str) -> None:
        """Remove it and its anonymous volumes; nothing to do if it is gone."""
        from docker.errors import APIError, NotFound

        try:
            self._client.containers.get(container_id).remove(force=True, v=True)
        except NotFound:
            return
        except APIError as error:
            # 409: removal already in progress (another stop raced us); it will be gone shortly.
            if error.status_code not in (404, 409):
                raise

    def remove_project_networks(self, project: str) -> None:
        """Remove the networks Compose created for `project` once no container uses them."""
        from docker.errors import APIError, NotFound

        for network in self._client.networks.list(filters={"label": f"{PROJECT_LABEL}={project}"}):
            try:
                network.remove()
            except (NotFound, APIError):
                continue  # in use by a new container of the same project, or already gone

    def port_publishers(self, port: int) -> list[str]:
        found = []
        for container in self._client.containers.list(ignore_removed=True):
            ports = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
            for bindings in ports.values():
                if any(str(b.get("HostPort")) == str(port) for b in bindings or []):
                    image = container.attrs.get("Config", {}).get("Image", "?")
                    found.append(f"container {container.name} (image {image})")
                    break
        return found

    def image_present(self, reference: str) -> bool:
        from docker.errors import ImageNotFound

        try:
            self._client.images.get(reference)
        except ImageNotFound:
            return False
        return True

    def engine_info(self) -> EngineInfo:
        try:
            version: dict[str, Any] = self._client.version()
            info: dict[str, Any] = self._client.info()
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

    def ensure_compose(self) -> None:
        compose.ensure_compose_cli()

    def start_compose(
        self, ws: ComposeFiles, agent: str, *args: str, offline: bool = False
    ) -> ComposeProcess:
        return compose.start_compose(ws, agent, *args, offline=offline)

    def compose_config_hash(
        self, ws: ComposeFiles, agent: str, service: str, offline: bool = False
    ) -> str | None:
        return compose.compose_config_hash(ws, agent, service, offline)


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


class LogStream:
    """The SDK's raw log chunks as text lines (stdout and stderr interleaved).

    Progress bars redraw with \\r: with `split_cr` each redraw is a line of its own.
    """

    def __init__(self, raw: Any, *, split_cr: bool = False):
        self._raw = raw
        self._separator = re.compile(rb"\r\n|\r|\n" if split_cr else rb"\n")

    def __iter__(self) -> Iterator[str]:
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
