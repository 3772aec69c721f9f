"""launch / stop / status / logs against a fake Docker adapter and a fake NVML.

The real Docker Engine paths are in tests/integration/test_runtime_docker.py; here the order of
operations, the GPU-memory wait, the lock and the messages are pinned down.
"""

from __future__ import annotations

import json
import multiprocessing
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters.docker_sdk import SdkDocker
from agent_manager.diagnosis.phases import phase_of
from agent_manager.errors import LaunchError
from agent_manager.observe import gpu
from agent_manager.observe.logs import parse_since
from agent_manager.observe.ports import PortUse, port_use
from agent_manager.observe.status import parse_docker_time
from agent_manager.spec.workspace import resolve_workspace
from agent_manager.switch import vram
from agent_manager.switch.context import LaunchEvents, LaunchFailed, LaunchOptions
from agent_manager.switch.core import switch_to as launch
from agent_manager.switch.lock import holder_path, workspace_lock
from tests.conftest import REAL_GET_DOCKER, CliResult
from tests.fakes import nvml as fake_nvml
from tests.fakes.docker import Behaviour, FakeDocker, install
from tests.fakes.nvml import Scenario, device, process

Cli = Callable[..., CliResult]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    fake_nvml.install_unavailable(monkeypatch)
    return install(monkeypatch)


def run_launch(workspace: Path, agent: str, **options: object) -> tuple[object, list[str]]:
    said: list[str] = []
    events = LaunchEvents(message=said.append, warning=said.append)
    result = launch(resolve_workspace(workspace), agent, LaunchOptions(**options), events)  # type: ignore[arg-type]
    return result, said


def test_launch_stops_the_running_agent_first(workspace: Path, fake: FakeDocker) -> None:
    fake.add("architect", port=8000)
    result, said = run_launch(workspace, "po")
    assert fake.ops[:3] == ["stop architect", "remove architect", "up -d po"]
    assert fake.running() == ["po"]
    assert "Stopped architect" in "\n".join(said)
    assert result.stopped == ["architect"]  # type: ignore[attr-defined]


def test_launch_removes_crashed_containers_too(workspace: Path, fake: FakeDocker) -> None:
    fake.add("developer", state="exited", port=8001)
    run_launch(workspace, "po")
    assert "remove developer" in fake.ops
    assert "stop developer" not in fake.ops  # an exited container needs no SIGTERM
    assert [c.agent for c in fake.containers.values()] == ["po"]


def test_launch_reports_endpoint_served_name_and_timings(workspace: Path, fake: FakeDocker) -> None:
    result, _ = run_launch(workspace, "po")
    assert result.endpoint == "http://127.0.0.1:8002/v1"  # type: ignore[attr-defined]
    assert result.served_name == "po"  # type: ignore[attr-defined]
    timings = result.timings  # type: ignore[attr-defined]
    assert timings.started <= timings.old_gone <= timings.up_issued <= timings.ready


def test_ready_needs_the_served_name_in_v1_models(workspace: Path, fake: FakeDocker) -> None:
    fake.behaviour["po"] = Behaviour(models=["someone-else"])
    with pytest.raises(Exception, match="not ready after 1 s"):
        run_launch(workspace, "po", timeout=1.0)


def test_a_container_that_exits_is_diagnosed_at_once(workspace: Path, fake: FakeDocker) -> None:
    fake.behaviour["po"] = Behaviour(
        exits_with=1, log=["ValueError: No available memory for the cache blocks. Try ..."]
    )
    start = time.monotonic()
    with pytest.raises(LaunchFailed) as failed:
        run_launch(workspace, "po", timeout=60.0)
    assert time.monotonic() - start < 5
    assert failed.value.failure.kind == "no-kv-memory"


def test_compose_up_failure_is_diagnosed(workspace: Path, fake: FakeDocker) -> None:
    fake.behaviour["po"] = Behaviour(
        up_exit_code=1,
        up_output=[
            'Error response from daemon: could not select device driver "nvidia" with '
            "capabilities: [[gpu]]"
        ],
    )
    with pytest.raises(LaunchFailed) as failed:
        run_launch(workspace, "po")
    assert failed.value.failure.kind == "no-nvidia-runtime"


def test_compose_up_stuck_mid_pull_is_cut_at_the_timeout(workspace: Path, fake: FakeDocker) -> None:
    fake.behaviour["po"] = Behaviour(
        up_output=[" vllm Pulling", " 9f1a2b3c4d5e Downloading [=>    ]  1.2GB/9.8GB"],
        up_hangs=True,
    )
    start = time.monotonic()
    with pytest.raises(LaunchError) as failed:
        run_launch(workspace, "po", timeout=1.5)
    assert time.monotonic() - start < 5
    assert fake.last_process.killed.is_set()
    assert "did not finish within 2 s (still pulling the image)" in failed.value.message
    assert "--timeout" in (failed.value.hint or "")
    assert any("1.2GB/9.8GB" in line for line in failed.value.details)


def _running_po(fake: FakeDocker, workspace: Path, config_hash: str) -> None:
    from dataclasses import replace

    from agent_manager.spec.loader import load_agent

    container = fake.add("po", port=8002)
    fake.containers[container.id] = replace(
        container,
        spec_hash=load_agent(resolve_workspace(workspace), "po").spec_hash(),
        labels={"com.docker.compose.config-hash": config_hash},
    )


def test_same_agent_with_same_spec_and_override_is_kept(workspace: Path, fake: FakeDocker) -> None:
    _running_po(fake, workspace, config_hash="abc")
    fake.config_hash["po"] = "abc"
    run_launch(workspace, "po")
    assert "stop po" not in fake.ops
    assert fake.running() == ["po"]


def test_same_agent_with_a_changed_override_is_stopped_before_up(
    workspace: Path, fake: FakeDocker
) -> None:
    _running_po(fake, workspace, config_hash="abc")
    fake.config_hash["po"] = "def"  # Compose would recreate it: we stop it ourselves first
    run_launch(workspace, "po")
    assert fake.ops[:3] == ["stop po", "remove po", "up -d po"]


def test_no_wait_returns_once_started(workspace: Path, fake: FakeDocker) -> None:
    fake.behaviour["po"] = Behaviour(healthy_after_probes=10**9)
    result, _ = run_launch(workspace, "po", wait=False)
    assert result.ready is False  # type: ignore[attr-defined]
    assert fake.running() == ["po"]


def test_nvml_unavailable_is_said_once_and_launch_goes_on(
    workspace: Path, fake: FakeDocker
) -> None:
    fake.add("architect", port=8000)
    _, said = run_launch(workspace, "po")
    assert said.count("NVML unavailable: not waiting for GPU memory.") == 1


def in_container(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pid: int, cid: str) -> None:
    """A fake /proc in which `pid` runs in container `cid` (cgroup v2, systemd driver)."""
    root = tmp_path / "proc"
    (root / str(pid)).mkdir(parents=True)
    (root / str(pid) / "cgroup").write_text(f"0::/system.slice/docker-{cid}.scope\n")
    monkeypatch.setattr(gpu, "PROC_ROOT", root)


def test_launch_waits_until_the_old_agents_gpu_memory_is_free(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = install(monkeypatch)
    old = fake.add("architect", port=8000)
    in_container(monkeypatch, tmp_path, 77, old.id)
    held = Scenario([device(used_gib=9)], [process(77, 8.5)])
    freed = Scenario([device(used_gib=0.5)], [])
    nv = fake_nvml.install(monkeypatch, held, held, held, held, freed)
    monkeypatch.setattr(vram, "VRAM_POLL_S", 0.01)
    _, said = run_launch(workspace, "po")
    assert nv.calls >= 5, "polled NVML until pid 77 was gone"
    assert "Waiting for the GPU memory of the stopped agent to be freed..." in said
    assert fake.ops.index("up -d po") > fake.ops.index("remove architect")


def test_gpu_memory_that_is_never_freed_gives_a_clear_error(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = install(monkeypatch)
    old = fake.add("architect", port=8000)
    in_container(monkeypatch, tmp_path, 77, old.id)
    fake_nvml.install(monkeypatch, Scenario([device(used_gib=9)], [process(77, 8.5)]))
    monkeypatch.setattr(vram, "VRAM_POLL_S", 0.01)
    monkeypatch.setattr(vram, "VRAM_TIMEOUT_S", 0.2)
    with pytest.raises(Exception, match=r"still held by pid 77 \(8.5 GiB\)"):
        run_launch(workspace, "po")
    assert not any(op.startswith("up") for op in fake.ops)


def test_port_held_by_a_stranger_stops_nothing(workspace: Path, fake: FakeDocker) -> None:
    fake.add("architect", port=8000)
    spec = workspace / "agents" / "po.yaml"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        spec.write_text(spec.read_text().replace("port: 8002", f"port: {port}"))
        with pytest.raises(Exception, match=rf"Port {port} on 127.0.0.1 .* in use by pid \d+"):
            run_launch(workspace, "po")
    assert fake.ops == [], "the running agent is left alone when the new one cannot start"


def test_port_held_by_one_of_our_agents_is_not_a_conflict(
    workspace: Path, fake: FakeDocker
) -> None:
    spec = workspace / "agents" / "po.yaml"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        spec.write_text(spec.read_text().replace("port: 8002", f"port: {port}"))
        fake.add("po", port=port)  # an older po on the same port: it is replaced
        run_launch(workspace, "po")
    assert fake.ops[:2] == ["stop po", "remove po"]


def test_a_missing_compose_stops_nothing(workspace: Path, fake: FakeDocker) -> None:
    fake.add("architect", port=8000)
    fake.compose_missing = True
    with pytest.raises(Exception, match="Docker Compose v2"):
        run_launch(workspace, "po")
    assert fake.compose_checks == 1
    assert fake.ops == [], "the running agent is left alone"
    assert fake.running() == ["architect"]


def test_a_port_nothing_listens_on_is_free() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert port_use("127.0.0.1", port) is PortUse.FREE


def _hold_lock(path: str, ready: multiprocessing.synchronize.Event, seconds: float) -> None:
    with workspace_lock(Path(path), agent="architect", command="launch architect", timeout=5):
        ready.set()
        time.sleep(seconds)


def test_second_launcher_is_told_who_holds_the_lock_and_gives_up_at_timeout(
    tmp_path: Path,
) -> None:
    lock = tmp_path / ".agent-manager.lock"
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(str(lock), ready, 3.0))
    holder.start()
    try:
        assert ready.wait(10)
        told: list[str] = []
        with pytest.raises(Exception, match="Gave up after 1 s waiting for") as error:
            with workspace_lock(
                lock,
                agent="po",
                command="launch po",
                timeout=1,
                on_wait=lambda who: told.append(who.describe()),
            ):
                pass
        assert told == [f"`agent-manager launch architect` for architect (pid {holder.pid})"]
        assert f"pid {holder.pid}" in str(error.value)
    finally:
        holder.join(10)


def test_lock_is_taken_once_the_holder_ends(tmp_path: Path) -> None:
    lock = tmp_path / ".agent-manager.lock"
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(str(lock), ready, 0.3))
    holder.start()
    assert ready.wait(10)
    start = time.monotonic()
    with workspace_lock(lock, agent="po", command="launch po", timeout=10):
        assert json.loads(holder_path(lock).read_text())["agent"] == "po"
    assert time.monotonic() - start < 5
    holder.join(10)


@pytest.mark.parametrize(
    ("line", "phase"),
    [
        ("(APIServer pid=1) INFO [x] Automatically detected platform cuda.", "starting vLLM"),
        (
            "(EngineCore_DP0 pid=2) INFO [x] Starting to load model Qwen/X...",
            "downloading or loading weights",
        ),
        ("Time spent downloading weights for Qwen/X: 12.5 seconds", "downloading weights"),
        ("Model loading took 5.42 GiB memory and 3.1 seconds", "weights loaded (5.42 GiB)"),
        (
            "Compiling a graph for compile range (1, 2048) takes 12.00 s",
            "compiling (torch.compile)",
        ),
        (
            "GPU KV cache size: 114,592 tokens, Maximum concurrency",
            "KV cache sized (114,592 tokens)",
        ),
        ("Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 50%", "capturing CUDA graphs"),
        ("INFO:     Application startup complete.", "server up, checking /health"),
        (" Container am-po-vllm-1  Creating", "creating container"),
        (" vllm Pulling ", "pulling image"),
        ("model-00001-of-00002.safetensors:  45%|████▌ | 2.2G/4.9G", "downloading weights"),
        ("Engine 000: Avg prompt throughput: 0.0 tokens/s", None),
    ],
)
def test_startup_phases_are_read_from_vllms_log(line: str, phase: str | None) -> None:
    assert phase_of(line) == phase


def test_since_accepts_durations_and_times() -> None:
    assert parse_since("10m", now=1000.0) == 400.0
    assert parse_since("2026-11-23T10:00:00Z") == parse_docker_time("2026-11-23T10:00:00Z")
    with pytest.raises(Exception, match="neither a duration nor a time"):
        parse_since("yesterday")


def test_docker_times_keep_their_nanoseconds() -> None:
    assert parse_docker_time("2026-11-23T10:00:00.5Z") == pytest.approx(
        parse_docker_time("2026-11-23T10:00:00Z") + 0.5  # type: ignore[operator]
    )
    assert parse_docker_time("0001-01-01T00:00:00Z") is None


# --------------------------------------------------------------------------- CLI


def test_cli_launch_prints_endpoint_model_and_time(
    workspace: Path, fake: FakeDocker, cli: Cli
) -> None:
    result = cli("--home", str(workspace), "launch", "po")
    assert result.code == 0, result.output
    assert "po is ready in" in result.stdout
    assert "endpoint:  http://127.0.0.1:8002/v1" in result.stdout
    assert "model:     po" in result.stdout


def test_cli_launch_failure_says_what_to_do_and_quotes_the_log(
    workspace: Path, fake: FakeDocker, cli: Cli
) -> None:
    fake.behaviour["po"] = Behaviour(
        exits_with=1, log=["[x] ValueError: No available memory for the cache blocks. [bold]"]
    )
    result = cli("--home", str(workspace), "launch", "po")
    assert result.code == 1
    text = result.stderr
    order = [
        text.index("Error: po did not start: No GPU memory is left"),
        text.index("What to do: Raise gpu_memory_fraction"),
        text.index("Log lines:"),
        text.index("\n  [x] ValueError: No available memory for the cache blocks. [bold]\n"),
        text.index(f"Full log: agent-manager --home {workspace} logs po"),
    ]
    assert order == sorted(order)


def test_cli_launch_failure_as_json(workspace: Path, fake: FakeDocker, cli: Cli) -> None:
    fake.behaviour["po"] = Behaviour(exits_with=1, log=["KeyboardInterrupt: terminated"])
    result = cli("--home", str(workspace), "launch", "po", "--json")
    assert result.code == 1
    data = json.loads(result.stdout)
    assert data["ready"] is False and data["failure"]["kind"] == "interrupted"


def test_cli_launch_ctrl_c_leaves_the_container_and_says_how_to_stop_it(
    workspace: Path, fake: FakeDocker, cli: Cli
) -> None:
    fake.behaviour["po"] = Behaviour(ctrl_c_while_following=True)
    result = cli("--home", str(workspace), "launch", "po")
    assert result.code == 130
    assert "Stopped following po; its container is left as it is." in result.stderr
    assert f"agent-manager --home {workspace} stop po" in result.stderr
    assert f"agent-manager --home {workspace} logs po -f" in result.stderr
    assert fake.running() == ["po"]


def test_cli_stop_is_idempotent(workspace: Path, fake: FakeDocker, cli: Cli) -> None:
    fake.add("po", port=8002)
    first = cli("--home", str(workspace), "stop", "po")
    second = cli("--home", str(workspace), "stop", "po")
    assert first.code == 0 and "Stopped po (container" in first.stdout
    assert second.code == 0 and second.stdout.strip() == "Nothing to stop: po has no container."


def test_cli_status_shows_a_crashed_agent_with_its_reason(
    workspace: Path, fake: FakeDocker, cli: Cli
) -> None:
    crashed = fake.add("po", state="exited", port=8002, exit_code=1)
    fake.logs[crashed.id] = ["ValueError: No available memory for the cache blocks."]
    result = cli("--home", str(workspace), "status")
    assert result.code == 0
    assert "crashed" in result.stdout
    assert "po crashed: No GPU memory is left for the KV cache" in result.stdout
    assert "No agent is running." in result.stdout
    data = json.loads(cli("--home", str(workspace), "status", "--json").stdout)
    assert data["running"] is None
    assert data["agents"][0]["health"] == "failed"
    assert data["agents"][0]["exit_code"] == 1


def test_cli_status_when_nothing_runs(workspace: Path, fake: FakeDocker, cli: Cli) -> None:
    result = cli("--home", str(workspace), "status")
    assert result.code == 0 and result.stdout.strip() == "No agent is running."
    assert json.loads(cli("--home", str(workspace), "status", "--json").stdout) == {
        "running": None,
        "agents": [],
        "router": None,  # no `agent-manager serve` runs for this workspace
    }


def test_cli_logs_of_an_agent_never_launched(workspace: Path, fake: FakeDocker, cli: Cli) -> None:
    result = cli("--home", str(workspace), "logs", "po")
    assert result.code == 1
    assert "po has no container" in result.stderr


def test_docker_down_gives_a_clear_message(
    workspace: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setattr(docker_adapter, "get_docker", REAL_GET_DOCKER)  # on that socket only
    result = cli("--home", str(workspace), "launch", "po")
    assert result.code == 1
    assert "Cannot reach the Docker Engine" in result.stderr
    assert "systemctl start docker" in result.stderr


class _Logs:
    def __init__(self, chunks: list[bytes]):
        self.chunks = chunks

    def logs(self, **kwargs: object) -> list[bytes]:
        return self.chunks


class _Client:
    def __init__(self, chunks: list[bytes]):
        self.containers = type("C", (), {"get": lambda _, cid: _Logs(chunks)})()


@pytest.mark.parametrize(
    ("split_cr", "lines"),
    [
        (False, ["first", "bar 10%\rbar 60%\rbar 100%", "last"]),
        (True, ["first", "bar 10%", "bar 60%", "bar 100%", "last"]),
    ],
)
def test_log_stream_joins_chunks_into_lines(split_cr: bool, lines: list[str]) -> None:
    chunks = [b"fir", b"st\nbar 10%\rbar 6", b"0%\rbar 100%\nla", b"st"]
    docker = SdkDocker(_Client(chunks))
    assert list(docker.log_stream("x", follow=False, split_cr=split_cr)) == lines


def test_a_slow_stop_says_so_and_a_hung_one_gives_up_clearly(
    fake: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_manager.switch import stop as runtime

    stop_fast = fake.stop_container

    def slow_stop(container_id: str, grace_s: float) -> None:
        time.sleep(0.4)
        stop_fast(container_id, grace_s)

    monkeypatch.setattr(fake, "stop_container", slow_stop)
    monkeypatch.setattr(runtime, "SLOW_STOP_NOTICE_S", 0.05)
    said: list[str] = []
    runtime.stop_and_remove(fake.add("po", port=8002), grace_s=30, on_progress=said.append)
    assert said[0].startswith("Stopping po (container")
    assert any(line.startswith("Still waiting to stop po") for line in said)

    hung = fake.add("architect", port=8000)
    monkeypatch.setattr(fake, "stop_container", lambda cid, grace: time.sleep(5))
    with pytest.raises(Exception, match=r"Docker did not stop architect .* within 0 s"):
        runtime.stop_and_remove(hung, grace_s=-29.9)


def test_launch_refuses_a_spec_whose_api_key_variable_is_unset(
    workspace: Path, fake: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Otherwise compose passes an empty VLLM_API_KEY and vLLM serves without any key."""
    spec = workspace / "agents" / "po.yaml"
    spec.write_text(spec.read_text() + "api_key_env: PO_API_KEY\n")
    fake.add("architect", port=8000)
    monkeypatch.delenv("PO_API_KEY", raising=False)
    with pytest.raises(Exception, match=r"po asks for an API key in \$PO_API_KEY"):
        run_launch(workspace, "po")
    assert fake.ops == [], "nothing is stopped or started"

    monkeypatch.setenv("PO_API_KEY", "s3cret")
    run_launch(workspace, "po")
    assert fake.running() == ["po"]


def test_a_launch_that_compose_could_not_create_points_at_no_log(
    workspace: Path, fake: FakeDocker, cli: Cli
) -> None:
    """`logs` would answer "po has no container": no "Full log" line then."""
    fake.behaviour["po"] = Behaviour(
        up_exit_code=1, up_output=["Error response from daemon: manifest unknown"]
    )
    result = cli("--home", str(workspace), "launch", "po")
    assert result.code == 1
    assert "manifest unknown" in result.stderr
    assert "Full log" not in result.stderr
