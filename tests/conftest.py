"""Shared test setup: every test gets an isolated workspace, cache and plain output."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent_manager import ui
from agent_manager.adapters import compose as compose_adapter
from agent_manager.adapters import docker as docker_adapter
from agent_manager.cli import errors as cli_errors
from agent_manager.cli import options as cli_options
from agent_manager.cli.app import main
from agent_manager.spec import engine_choice

REPO = Path(__file__).resolve().parents[1]
REAL_GET_DOCKER = docker_adapter.get_docker  # for tests that point it at a socket of their own

# huggingface_hub reads this once, at import: set it before any test module imports it.
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the user's config, caches, agents or colours."""
    for var in (
        "AGENT_MANAGER_HOME",
        "AGENT_MANAGER_DEBUG",
        "HF_TOKEN",
        "HF_HUB_CACHE",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_OFFLINE",
        "HF_ENDPOINT",
        "XDG_CACHE_HOME",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    # huggingface_hub may report usage to the real hub from request headers; tests never
    # reach the internet.
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("TERM", "dumb")
    # Commands the tests run as processes (the router, the CLI as another user) see a GPU
    # machine too, without probing the host.
    monkeypatch.setenv(engine_choice.ENGINE_ENV, "cuda")
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # chat history
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))  # the router's state
    monkeypatch.setenv("AGENT_MANAGER_INSTANCE", f"amtest-{uuid.uuid4().hex[:8]}")
    run_dir = tmp_path / "cwd"
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)
    _reset_caches()
    engine_choice.set_machine_probe(lambda: GPU_MACHINE)
    yield
    _reset_caches()


# `engine: auto` sees a GPU machine in every test unless a test says otherwise
# (`engine_choice.set_machine_probe`): no unit test probes the host's NVML or Docker.
GPU_MACHINE = engine_choice.MachineEngines(cuda=True)
engine_choice.set_machine_probe(lambda: GPU_MACHINE)  # for agents loaded while collecting


@pytest.fixture(autouse=True)
def _no_host_ports_or_docker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unit tests see neither the user's Docker nor who else listens on this machine: the
    user's own `po` on 127.0.0.1:8002 must not fail them. A port counts as taken only when this
    test process listens on it; Docker is unreachable unless a test installs tests/fakes/docker.py.
    The Docker and real-vLLM tiers use the real ones."""
    if any(request.node.get_closest_marker(m) for m in ("docker", "vllm", "install")):
        return
    from agent_manager.doctor import checks
    from agent_manager.errors import DockerUnavailableError
    from agent_manager.observe import ports
    from tests.fakes.docker import install_unreachable

    real = ports.port_use

    def port_use(host: str, port: int) -> ports.PortUse:
        if host not in ("127.0.0.1", "0.0.0.0", "::", "::1", "localhost"):
            return real(host, port)  # an address of no interface here: nothing is bound
        mine = f"pid {os.getpid()} "
        taken = any(h.startswith(mine) for h in ports.listening_processes(port))
        return ports.PortUse.IN_USE if taken else ports.PortUse.FREE

    monkeypatch.setattr(ports, "port_use", port_use)
    monkeypatch.setattr(checks, "port_use", port_use)
    install_unreachable(
        monkeypatch,
        DockerUnavailableError("Docker is not reachable (unit test: no fake installed)."),
    )


def _reset_caches() -> None:
    ui.out.cache_clear()
    ui.err.cache_clear()
    docker_adapter.get_docker.cache_clear()
    compose_adapter.ensure_compose_cli.cache_clear()
    cli_options.set_home(None)
    cli_errors.set_debug(False)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace folder holding copies of the repo's default agents (and no compose files)."""
    root = tmp_path / "ws"
    shutil.copytree(REPO / "agents", root / "agents")
    (root / "compose").mkdir()
    return root


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `agent-manager ARGS...` in-process, as a user would, and capture what it prints."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        _reset_caches()
        try:
            main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        else:  # pragma: no cover - main always exits
            code = 0
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


# --- which tiers a plain `pytest` runs ------------------------------------------------------------
#
# The Docker tier (tests marked `docker`) needs a Docker Engine, Compose v2 and the stand-in image.
# A plain `pytest` on a fresh clone runs the unit tiers and says in one line how to run the rest.
# Under CI (CI=true) and in scripts/test.sh (AGENT_MANAGER_TEST_DOCKER=1) the Docker tier runs and
# fails without Docker: it is never skipped. Naming Docker tests on the command line (a path under
# tests/integration, a node id) or choosing with `-m` runs them too.
DOCKER_OPT_IN = "AGENT_MANAGER_TEST_DOCKER"
# The installer tier (`install`: scripts/install.sh into a fresh venv, ~20 s a run) goes with it.
SLOW_TIERS = ("docker", "install")
DOCKER_TIER_LINE = (
    "{count} Docker-tier and installer tests not run: ./scripts/test.sh runs every tier "
    f"(or set {DOCKER_OPT_IN}=1 with Docker, Compose v2 and the stand-in image present)."
)
_DESELECTED_DOCKER = pytest.StashKey[int]()


def docker_tier_wanted(config: pytest.Config) -> bool:
    if _truthy(os.environ.get(DOCKER_OPT_IN)) or _truthy(os.environ.get("CI")):
        return True
    if config.getoption("markexpr"):
        return True
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return False
    return any(_names_docker_tests(arg) for arg in config.args)


def skip_unless_ci(reason: str) -> None:
    """A test this machine cannot run: skipped (with the reason) on a developer's machine,
    failed under CI=true, where every tier must run or fail, never skip."""
    if _truthy(os.environ.get("CI")):
        pytest.fail(f"cannot run under CI: {reason}")
    pytest.skip(reason)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no")


def _names_docker_tests(arg: str) -> bool:
    path = Path(arg.split("::", 1)[0]).resolve()
    integration = REPO / "tests" / "integration"
    return path == integration or integration in path.parents or "::" in arg


@pytest.hookimpl(trylast=True)  # after tests/integration/conftest.py marks its tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _deselect_docker_tier(config, items)
    _deselect_helm_without_binary(config, items)


def _deselect_docker_tier(config: pytest.Config, items: list[pytest.Item]) -> None:
    if docker_tier_wanted(config):
        return
    docker_items = [item for item in items if any(map(item.get_closest_marker, SLOW_TIERS))]
    if not docker_items:
        return
    config.hook.pytest_deselected(items=docker_items)
    slow = set(map(id, docker_items))
    items[:] = [item for item in items if id(item) not in slow]
    config.stash[_DESELECTED_DOCKER] = len(docker_items)


HELM_LINE = (
    "{count} export tests rendered by real `helm template` not run: no helm binary "
    "(./scripts/install_helm.sh installs it; ./scripts/test.sh runs them always)."
)
_DESELECTED_HELM = pytest.StashKey[int]()


def _deselect_helm_without_binary(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`helm` tests run wherever the binary is; without it a plain `pytest` leaves them out
    and says so, while scripts/test.sh and CI (which install it) fail instead."""
    from tests.fakes.helm import helm_binary

    if helm_binary() or _truthy(os.environ.get("AGENT_MANAGER_TEST_HELM")):
        return
    if _truthy(os.environ.get("CI")):
        return
    helm_items = [item for item in items if item.get_closest_marker("helm")]
    if not helm_items:
        return
    config.hook.pytest_deselected(items=helm_items)
    items[:] = [item for item in items if not item.get_closest_marker("helm")]
    config.stash[_DESELECTED_HELM] = len(helm_items)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    count = config.stash.get(_DESELECTED_DOCKER, 0)
    if count:
        terminalreporter.write_line(DOCKER_TIER_LINE.format(count=count))
    helm = config.stash.get(_DESELECTED_HELM, 0)
    if helm:
        terminalreporter.write_line(HELM_LINE.format(count=helm))
