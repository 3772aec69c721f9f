"""A fake Docker (the `adapters.docker.Docker` Protocol) and agent HTTP endpoint.

`install_docker(monkeypatch)` makes the one factory, `get_docker()`, return a `FakeDocker`;
`install(monkeypatch)` also answers the agent's `/health` and `/v1/models` for launch tests.
Containers live in a dict; every operation is appended to `FakeDocker.ops`, so a test can
assert the order in which things happened ("stop architect" before "up po").
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters import http as http_adapter
from agent_manager.adapters.compose import ComposeFiles
from agent_manager.adapters.containers import project_name
from agent_manager.adapters.docker import AgentContainer, Docker, EngineInfo
from agent_manager.adapters.http import Probe
from agent_manager.errors import DockerUnavailableError
from agent_manager.plan import planner
from agent_manager.spec.workspace import Workspace

READY_LOG = [
    "(APIServer pid=1) INFO 11-23 10:00:00 [api_server.py:1] vLLM server version 0.33.0",
    "(EngineCore_DP0 pid=2) INFO 11-23 10:00:01 [gpu_model_runner.py:1] Starting to load model x",
    "(APIServer pid=1) INFO 11-23 10:00:02 [api_server.py:1] Starting vLLM server on "
    "http://0.0.0.0:8000",
    "INFO:     Application startup complete.",
]


@dataclass
class Behaviour:
    """What happens when `compose up` starts an agent."""

    up_exit_code: int = 0
    up_output: list[str] = field(default_factory=lambda: [" Container x  Started"])
    exits_with: int | None = None  # the container exits at once with this code
    log: list[str] = field(default_factory=lambda: list(READY_LOG))
    healthy_after_probes: int = 2  # /health answers 200 from this probe on
    models: list[str] | None = None  # /v1/models ids (default: the served name)
    up_hangs: bool = False  # `compose up` prints its output, then hangs (pipe open) until killed
    ctrl_c_while_following: bool = False  # the user presses Ctrl-C while launch follows it


class FakeProcess:
    def __init__(self, lines: list[str], code: int, hangs: bool = False):
        self.returncode = code
        self.killed = threading.Event()
        self._hangs = hangs
        self.stdout: Iterator[str] = self._output(lines)

    def _output(self, lines: list[str]) -> Iterator[str]:
        yield from (line + "\n" for line in lines)
        if self._hangs:
            self.killed.wait(timeout=30)

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode

    def poll(self) -> int:
        return self.returncode

    def kill(self) -> None:
        self.killed.set()


class FakeDocker:
    def __init__(self) -> None:
        self.containers: dict[str, AgentContainer] = {}
        self.logs: dict[str, list[str]] = {}
        self.ops: list[str] = []
        self.behaviour: dict[str, Behaviour] = {}
        self.publishers: dict[int, list[str]] = {}
        self._ids = itertools.count(1)
        self._probes = 0
        self.serving: str | None = None  # agent whose "server" answers on its port
        self.config_hash: dict[str, str] = {}  # what `compose config --hash` answers per agent
        self.engine = EngineInfo("27.3.1", "1.47", ("nvidia", "runc"), "runc", ())
        self.missing_images: set[str] = set()
        self.compose_missing = False
        self.compose_checks = 0  # `docker compose version` runs

    # -- set-up helpers -------------------------------------------------------------------
    def add(
        self, agent: str, state: str = "running", port: int = 8000, exit_code: int | None = None
    ) -> AgentContainer:
        cid = f"{next(self._ids):064x}"
        container = AgentContainer(
            id=cid,
            name=f"{project_name(agent)}-vllm-1",
            agent=agent,
            project=project_name(agent),
            state=state,
            exit_code=exit_code if exit_code is not None else (0 if state == "running" else 1),
            started_at="2026-11-23T10:00:00.123456789Z",
            finished_at=None,
            port=port,
            served_name=agent,
            spec_hash="old",
        )
        self.containers[cid] = container
        self.logs[cid] = list(READY_LOG)
        if state == "running":
            self.serving = agent
        return container

    def running(self) -> list[str]:
        return sorted(c.agent for c in self.containers.values() if c.running)

    # -- the Docker Protocol ----------------------------------------------------------------
    def list_agent_containers(self, include_stopped: bool = True) -> list[AgentContainer]:
        return [c for c in self.containers.values() if include_stopped or c.running]

    def agent_container(self, container_id: str) -> AgentContainer | None:
        return self.containers.get(container_id)

    def stop_container(self, container_id: str, grace_s: float) -> None:
        container = self.containers[container_id]
        self.ops.append(f"stop {container.agent}")
        self.containers[container_id] = replace(container, state="exited", exit_code=0)
        if self.serving == container.agent:
            self.serving = None

    def remove_container(self, container_id: str) -> None:
        container = self.containers.pop(container_id, None)
        if container is not None:
            self.ops.append(f"remove {container.agent}")

    def remove_project_networks(self, project: str) -> None:
        self.ops.append(f"network-rm {project}")

    def compose_config_hash(
        self, ws: ComposeFiles, agent: str, service: str, offline: bool = False
    ) -> str | None:
        return self.config_hash.get(agent)

    def port_publishers(self, port: int) -> list[str]:
        return self.publishers.get(port, [])

    def start_compose(
        self, ws: ComposeFiles, agent: str, *args: str, offline: bool = False
    ) -> FakeProcess:
        behaviour = self.behaviour.get(agent, Behaviour())
        self.ops.append(f"{' '.join(args)} {agent}" + (" offline" if offline else ""))
        if behaviour.up_exit_code == 0:
            mine = [c for c in self.containers.values() if c.agent == agent]
            if not mine:
                container = self.add(agent, port=_port(ws, agent))
                self.serving = None
            else:
                container = mine[0]
            self.logs[container.id] = list(behaviour.log)
            if behaviour.exits_with is not None:
                self.containers[container.id] = replace(
                    container, state="exited", exit_code=behaviour.exits_with
                )
            self._probes = 0
            self._pending = agent
        self.last_process = FakeProcess(
            behaviour.up_output, behaviour.up_exit_code, hangs=behaviour.up_hangs
        )
        return self.last_process

    def log_lines(self, container_id: str, tail: int | None = None) -> list[str]:
        lines = self.logs.get(container_id, [])
        return lines[-tail:] if tail else list(lines)

    def log_stream(
        self,
        container_id: str,
        *,
        follow: bool,
        tail: int | None = None,
        since: float | None = None,
        split_cr: bool = False,
    ) -> FakeLogStream:
        return FakeLogStream(self.log_lines(container_id, tail))

    def image_present(self, reference: str) -> bool:
        return reference not in self.missing_images

    def engine_info(self) -> EngineInfo:
        return self.engine

    def ensure_compose(self) -> None:
        self.compose_checks += 1
        if self.compose_missing:
            raise DockerUnavailableError("Docker Compose v2 (`docker compose`) is not available.")

    # -- the HTTP adapter's functions -------------------------------------------------------
    def probe_health(self, url: str, timeout: float = 1.0) -> Probe:
        agent = getattr(self, "_pending", None) or self.serving
        if agent is None or not any(
            c.agent == agent and c.running for c in self.containers.values()
        ):
            return Probe(False, None, "ConnectionError")
        self._probes += 1
        if self.behaviour.get(agent, Behaviour()).ctrl_c_while_following:
            raise KeyboardInterrupt
        if self._probes >= self.behaviour.get(agent, Behaviour()).healthy_after_probes:
            self.serving = agent
            return Probe(True, 200)
        return Probe(False, None, "ConnectionError")

    def served_models(self, url: str, api_key: str | None = None, timeout: float = 2.0) -> Any:
        if self.serving is None:
            return None
        models = self.behaviour.get(self.serving, Behaviour()).models
        return [self.serving] if models is None else models


class FakeLogStream:
    def __init__(self, lines: list[str]):
        self.lines = lines

    def __iter__(self) -> Iterator[str]:
        return iter(self.lines)

    def close(self) -> None:
        pass


def _port(ws: ComposeFiles, agent: str) -> int:
    from agent_manager.spec.loader import load_agent

    assert isinstance(ws, Workspace)  # the Compose adapter is only ever given a Workspace
    return load_agent(ws, agent).spec.port


def install_docker(monkeypatch: pytest.MonkeyPatch, fake: FakeDocker | None = None) -> FakeDocker:
    """Make `get_docker()` return `fake` (a new, empty FakeDocker by default)."""
    fake = fake or FakeDocker()
    # Cached like the real factory: the test set-up calls its cache_clear().
    monkeypatch.setattr(docker_adapter, "get_docker", functools.cache(lambda: fake))
    return fake


def install_unreachable(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """Make `get_docker()` raise `error` (Docker down, or a call a test forbids)."""

    @functools.cache
    def unreachable() -> Docker:
        raise error

    monkeypatch.setattr(docker_adapter, "get_docker", unreachable)


def install(monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    """A fake Docker plus the agents' HTTP endpoints: what launch, stop, status and logs use."""
    fake = install_docker(monkeypatch)
    monkeypatch.setattr(http_adapter, "probe_health", fake.probe_health)
    monkeypatch.setattr(http_adapter, "served_models", fake.served_models)
    monkeypatch.setattr(http_adapter, "fetch_metrics", lambda url, timeout=2.0: None)
    # The planner reads NVML and checkpoints; launch's own logic is what is tested here.
    monkeypatch.setattr(planner, "ensure_fits", lambda agent, force=False, sleepers=None: [])
    return fake


def _implements_the_protocol(fake: FakeDocker) -> Docker:
    return fake  # mypy (it checks tests/fakes) fails here if FakeDocker leaves the Protocol
