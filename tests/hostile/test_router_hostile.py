"""Run every row of the router/workspace corpus (`router_cases.py`) under one contract:
the status or exit code, the message, the time bound, no secret reaching an address the CLI
did not bind, no write through a link, no workspace file lost, no traceback."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent_manager.adapters import docker as docker_adapter
from agent_manager.router.config import RouterConfig
from agent_manager.router.limits import ClientLimits
from agent_manager.spec.workspace import Workspace
from tests.conftest import REAL_GET_DOCKER, REPO, CliResult
from tests.hostile.conftest import _silent_server
from tests.hostile.router_cases import ATTACKS, Attack
from tests.hostile.router_world import BAIT_TEXT, SECRET, Outcome, Router, Trap, router, trap
from tests.hostile.test_hostile_input import _snapshot
from tests.standin.process import StandinProcess, run_standin


@dataclass
class World:
    ws: Path
    workspace: Workspace
    bait: Path
    bait_text: str
    trap: Trap
    router: Router | None
    monkeypatch: pytest.MonkeyPatch
    run: Callable[..., CliResult]

    def cli(self, *args: str) -> CliResult:
        return self.run("--home", str(self.ws), *args)


@pytest.fixture(scope="module")
def po() -> Iterator[StandinProcess]:
    with run_standin(["Qwen/Qwen2.5-7B-Instruct-AWQ", "--served-model-name", "po"]) as standin:
        yield standin


@pytest.fixture
def fake_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes import docker as fake

    fake.install(monkeypatch)


@pytest.fixture
def docker_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Docker answered once, then its socket went away: docker-py raises requests' error."""
    import requests

    from tests.fakes import docker as fake

    docker = fake.install_docker(monkeypatch)

    def lost(include_stopped: bool = True) -> list[object]:
        raise requests.exceptions.ConnectionError(
            "HTTPConnectionPool(host='localhost', port=None): Max retries exceeded with url: "
            "/v1.47/containers/json (Caused by NewConnectionError('<urllib3.connection...>'))"
        )

    monkeypatch.setattr(docker, "list_agent_containers", lost)


@pytest.fixture
def docker_hung(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A Docker socket that accepts and never answers, with docker-py's own 30 s timeout:
    only the router's bounds can keep a request from waiting that long."""
    path = str(tmp_path / "hung-docker.sock")
    for _ in _silent_server(socket.AF_UNIX, path):
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        # The real client, on this test's own socket (unit tests get no Docker otherwise).
        monkeypatch.setattr(docker_adapter, "get_docker", REAL_GET_DOCKER)
        yield


def _config(options: dict[str, object]) -> RouterConfig:
    options = {k: v for k, v in options.items() if k != "docker"}
    limits = ClientLimits(**options.pop("limits", {}))  # type: ignore[arg-type]
    return RouterConfig(limits=limits, **options)  # type: ignore[arg-type]


def _switcher(kind: object, ws: Workspace) -> object | None:
    if kind is None:
        return None
    from agent_manager.router.switcher import DockerSwitcher

    return DockerSwitcher(ws, 30)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_attack(
    attack: Attack,
    po: StandinProcess,
    cli: Callable[..., CliResult],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = Path(tempfile.mkdtemp(prefix="am-attack-"))
    try:
        _run(attack, root, po, cli, request, monkeypatch)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(
    attack: Attack,
    root: Path,
    po: StandinProcess,
    cli: Callable[..., CliResult],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = root / "ws"
    shutil.copytree(REPO / "agents", ws / "agents")
    (ws / "compose").mkdir()
    bait = root / "bait.txt"
    bait.write_text(BAIT_TEXT)
    for name in ("HF_TOKEN", "ROUTER_KEY"):
        monkeypatch.setenv(name, SECRET)
    # The real Docker is never asked: a fake one, unless the row brings its own broken one.
    needs = attack.needs
    if not any(name.startswith("docker") for name in needs) and "fake_docker" not in needs:
        needs = ("fake_docker", *needs)
    for name in needs:
        request.getfixturevalue(name)
    workspace = Workspace(ws.resolve(), "test")
    with ExitStack() as stack:
        the_trap = stack.enter_context(trap(root))
        the_router = None
        if attack.router is not None:
            config = _config(attack.router)
            switcher = _switcher(attack.router.get("docker"), workspace)
            the_router = stack.enter_context(router(po.url, config, switcher))
            if switcher is not None:  # po runs: as Docker said before it went away
                scheduler = the_router.core.scheduler
                scheduler.observe_running("po", scheduler.generation())
        world = World(ws, workspace, bait, BAIT_TEXT, the_trap, the_router, monkeypatch, cli)
        before = _snapshot(ws)
        start = time.monotonic()
        outcome = attack.act(world)
        elapsed = time.monotonic() - start
        _holds(attack, world, outcome, elapsed, before)


def _holds(
    attack: Attack,
    world: World,
    outcome: Outcome,
    elapsed: float,
    before: dict[str, bytes | None],
) -> None:
    import fnmatch

    text = outcome.text
    print(f"[{attack.id}] {outcome.status} in {elapsed:.2f} s\n{text[:3000]}")
    assert outcome.status == attack.code, text[:3000]
    flat = " ".join(text.split())
    for needle in attack.says:
        assert " ".join(needle.split()) in flat, f"{needle!r} not in:\n{text[:3000]}"
    assert "Traceback" not in text and "Unexpected error" not in text, text
    assert elapsed < attack.max_seconds, f"took {elapsed:.1f} s"
    # No secret reached an address the CLI did not bind (the trap), nor any answer.
    assert SECRET.encode() not in world.trap.received(), "the secret reached the trap"
    assert SECRET not in text, "the secret was shown"
    # Nothing written through a link: the bait is as it was, and still a plain file.
    assert world.bait.is_file() and not world.bait.is_symlink()
    assert world.bait.read_text() == world.bait_text, "written through a link"
    # Nothing of the workspace lost or changed but what the case may change.
    after = _snapshot(world.ws)
    for rel, content in before.items():
        if any(fnmatch.fnmatch(rel, pattern) for pattern in attack.may_change):
            continue
        assert rel in after, f"{rel} was lost"
        if content is not None:
            assert after[rel] == content, f"{rel} was changed"
    assert not [rel for rel in after if rel.endswith(".tmp")], "temporary file left behind"
    if attack.check is not None:
        attack.check(world, outcome)


def test_the_corpus_is_large_enough() -> None:
    """The issue asks for at least 40 cases, with the export ones (test_export_hostile.py)."""
    from tests.hostile.test_export_hostile import CASES as EXPORT_CASES

    assert len(ATTACKS) + len(EXPORT_CASES) >= 40
    assert len({a.id for a in ATTACKS}) == len(ATTACKS)
