"""Fixtures for tests that run real Docker and real Compose with the vLLM stand-in image.

Everything under tests/integration is marked `docker`. These tests never skip: without a
Docker Engine, Compose v2 or the stand-in image they FAIL and say to run ./scripts/test.sh
(which provides all three). Quick subset without them: `.venv/bin/pytest -m "not docker"`.

Fixtures (for any test in tests/integration):

- `docker_ready` (session, autouse): checks `docker info`, `docker compose version` and the
  image `agent-manager-standin:0.33.0`; fails the test otherwise.
- `standin_workspace` -> `StandinWorkspace`: a tmp workspace holding the default agents with
  their host ports moved to free ports, their compose files rendered by `agent-manager
  compose`, and a test override per agent (stand-in image, no GPU reservation, read-only
  mounts, STANDIN_LOAD_SECONDS=0.5). It sets AGENT_MANAGER_HOME to that workspace, so the
  `cli` fixture's commands (`cli("launch", "po")`) use it. Helpers: `.ports[agent]`,
  `.url(agent)`, `.project(agent)`, `.files(agent)`, `.compose(agent, *args)` (runs
  `docker compose -p <project> -f base -f override ARGS`), `.set_standin_env(agent, env)`
  (rewrites the override with STANDIN_* knobs, e.g. {"STANDIN_FAIL": "oom"}),
  `.wait_http(agent, path)`.
- `docker_cleanup` (autouse): after each test, `docker compose down` every Compose project of
  the test's AGENT_MANAGER_INSTANCE and removes containers and networks left with that prefix.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import CliResult
from tests.standin.host_python import IMAGE
from tests.standin.override import write_test_override
from tests.standin.process import free_port

HERE = Path(__file__).resolve().parent
RUN_TEST_SCRIPT = "run ./scripts/test.sh (it installs/starts Docker and builds the stand-in image)"
_PORT_LINE = re.compile(r"^port:\s*\d+\s*$", re.MULTILINE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.docker)


def _run(*command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session", autouse=True)
def docker_ready() -> None:
    """Docker, Compose v2 and the stand-in image must be there: fail (never skip) otherwise."""
    try:
        info = _run("docker", "info", "--format", "{{.ServerVersion}}", timeout=30)
    except FileNotFoundError:
        pytest.fail(f"the `docker` command is not installed; {RUN_TEST_SCRIPT}")
    if info.returncode != 0:
        pytest.fail(f"no Docker Engine answers `docker info` ({info.stderr.strip()}); "
                    f"{RUN_TEST_SCRIPT}")  # fmt: skip
    compose = _run("docker", "compose", "version", "--short", timeout=30)
    if compose.returncode != 0:
        pytest.fail(f"`docker compose` (v2) is not available; {RUN_TEST_SCRIPT}")
    image = _run("docker", "image", "inspect", IMAGE, timeout=30)
    if image.returncode != 0:
        pytest.fail(f"the stand-in image {IMAGE} is missing; {RUN_TEST_SCRIPT}")


def _instance_resources(instance: str) -> tuple[list[str], list[str]]:
    """Compose projects and container ids whose names start with `<instance>-`."""
    listed = _run(
        "docker", "ps", "-a", "--format",
        '{{.ID}} {{.Label "com.docker.compose.project"}} {{.Names}}',
        timeout=60,
    )  # fmt: skip
    prefix = instance + "-"
    projects: set[str] = set()
    containers: list[str] = []
    for line in listed.stdout.splitlines():
        container_id, project, names = (line.split(" ", 2) + ["", ""])[:3]
        if project.startswith(prefix):
            projects.add(project)
        if project.startswith(prefix) or names.startswith(prefix):
            containers.append(container_id)
    return sorted(projects), containers


def cleanup_instance(instance: str) -> None:
    """Bring down everything a test started under its AGENT_MANAGER_INSTANCE prefix."""
    projects, _ = _instance_resources(instance)
    for project in projects:
        _run("docker", "compose", "-p", project, "down", "--remove-orphans", "--timeout", "5")
    _, leftovers = _instance_resources(instance)
    if leftovers:
        _run("docker", "rm", "-f", *leftovers)
    networks = _run("docker", "network", "ls", "--filter", f"name={instance}-", "-q")
    if networks.stdout.split():
        _run("docker", "network", "rm", *networks.stdout.split())


@pytest.fixture(autouse=True)
def docker_cleanup() -> Iterator[None]:
    # Read now: tests/conftest.py's autouse fixture has set a unique instance for this test.
    instance = os.environ["AGENT_MANAGER_INSTANCE"]
    yield
    cleanup_instance(instance)


@dataclass
class StandinWorkspace:
    """A workspace whose agents run as stand-in containers on free host ports."""

    root: Path
    ports: dict[str, int]
    agents: list[str] = field(default_factory=list)

    def project(self, agent: str) -> str:
        return f"{os.environ['AGENT_MANAGER_INSTANCE']}-{agent}"

    def compose_file(self, agent: str) -> Path:
        return self.root / "compose" / f"docker-compose-{agent}.yml"

    def override_file(self, agent: str) -> Path:
        return self.root / "compose" / f"docker-compose-{agent}.override.yml"

    def files(self, agent: str, with_override: bool = True) -> list[Path]:
        files = [self.compose_file(agent)]
        if with_override and self.override_file(agent).is_file():
            files.append(self.override_file(agent))
        return files

    def url(self, agent: str) -> str:
        return f"http://127.0.0.1:{self.ports[agent]}"

    def set_standin_env(self, agent: str, env: dict[str, str]) -> Path:
        """Rewrite the agent's test override with these STANDIN_* (or other) variables."""
        return write_test_override(self.root, agent, env)

    def compose(
        self, agent: str, *args: str, with_override: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """`docker compose -p <project> -f base [-f override] ARGS`, as the tool runs it."""
        command = ["docker", "compose", "-p", self.project(agent)]
        for path in self.files(agent, with_override):
            command += ["-f", str(path)]
        return subprocess.run(
            [*command, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "HF_HOME": os.environ.get("HF_HOME", str(self.root / "hf"))},
        )

    def wait_http(
        self, agent: str, path: str = "/health", timeout: float = 30
    ) -> requests.Response:
        """Poll GET url(agent)+path until it answers 200; fail the test with the logs if not."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                answer = requests.get(self.url(agent) + path, timeout=2)
                if answer.status_code == 200:
                    return answer
                last = f"HTTP {answer.status_code}"
            except requests.RequestException as error:
                last = type(error).__name__
            time.sleep(0.1)
        logs = self.compose(agent, "logs", "--no-color").stdout
        pytest.fail(f"{self.url(agent)}{path} not 200 after {timeout:.0f}s ({last}); logs:\n{logs}")


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@pytest.fixture
def standin_workspace(
    workspace: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> StandinWorkspace:
    """The default agents on free ports, compose files rendered, a test override each."""
    agents = sorted(p.stem for p in (workspace / "agents").glob("*.yaml"))
    ports = dict(zip(agents, _free_ports(len(agents)), strict=True))
    for agent, port in ports.items():
        spec = workspace / "agents" / f"{agent}.yaml"
        text, count = _PORT_LINE.subn(f"port: {port}", spec.read_text(encoding="utf-8"))
        assert count == 1, f"{spec} has no top-level `port:` line to move to a free port"
        spec.write_text(text, encoding="utf-8")
    monkeypatch.setenv("AGENT_MANAGER_HOME", str(workspace))
    rendered = cli("compose")
    assert rendered.code == 0, rendered.output
    for agent in agents:
        write_test_override(workspace, agent)
    return StandinWorkspace(root=workspace, ports=ports, agents=agents)
