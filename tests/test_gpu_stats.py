"""`gpu-stats`: what is on the GPU, and which agent holds it (NVML faked at the adapter)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent_manager.adapters import nvml
from agent_manager.adapters.docker import AgentContainer
from agent_manager.errors import DockerUnavailableError, GpuUnavailableError
from agent_manager.observe import gpu
from tests.conftest import CliResult
from tests.fakes import nvml as fake_nvml
from tests.fakes.docker import FakeDocker, install_docker, install_unreachable
from tests.fakes.nvml import FakePynvml, Scenario, device, process

PO_CONTAINER = "4f" * 32  # a full 64-hex container id
OTHER_CONTAINER = "ab" * 32
Cli = Callable[..., CliResult]


def _container(cid: str, agent: str) -> AgentContainer:
    return AgentContainer(
        id=cid,
        name=f"amtest-{agent}-vllm-1",
        agent=agent,
        project=f"amtest-{agent}",
        state="running",
        exit_code=None,
        started_at="2026-11-23T10:00:00Z",
        finished_at=None,
        port=8002,
        served_name=agent,
        spec_hash="abc",
    )


@pytest.fixture
def proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[int, str], None]:
    """A fake /proc: proc(pid, cgroup_text)."""
    root = tmp_path / "proc"
    monkeypatch.setattr(gpu, "PROC_ROOT", root)

    def add(pid: int, cgroup: str) -> None:
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cgroup").write_text(cgroup)

    return add


@pytest.fixture
def po_on_gpu(
    monkeypatch: pytest.MonkeyPatch, proc: Callable[[int, str], None]
) -> fake_nvml.FakeNvml:
    """A 16 GiB card: vLLM of agent po (14.1 GiB, in its container) and a desktop session."""
    proc(4242, f"0::/system.slice/docker-{PO_CONTAINER}.scope\n")
    proc(1873, "0::/user.slice/user-1000.slice/session-2.scope\n")
    docker = install_docker(monkeypatch, FakeDocker())
    docker.containers[PO_CONTAINER] = _container(PO_CONTAINER, "po")
    return fake_nvml.install(
        monkeypatch,
        Scenario(
            [device(used_gib=14.6)],
            [process(1873, 0.5), process(4242, 14.1)],
        ),
    )


def test_gpu_stats_names_the_agent_holding_vram(po_on_gpu: object, cli: Cli) -> None:
    result = cli("gpu-stats")
    assert result.code == 0, result.output
    assert "NVIDIA GeForce RTX 4080" in result.stdout
    assert "Driver 580.95.05, CUDA 13.0" in result.stdout
    assert "14.6 GiB / 16.0 GiB" in result.stdout
    lines = [line for line in result.stdout.splitlines() if "4242" in line]
    assert len(lines) == 1
    assert "14.1 GiB" in lines[0] and " po " in lines[0] and "amtest-po-vllm-1" in lines[0]
    desktop = next(line for line in result.stdout.splitlines() if "1873" in line)
    assert "0.5 GiB" in desktop and " po " not in desktop


def test_gpu_stats_at_60_columns_keeps_names_whole_and_drops_minor_columns(
    po_on_gpu: object, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    result = cli("gpu-stats")
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    assert any("NVIDIA GeForce RTX 4080" in line for line in lines)
    assert any("amtest-po-vllm-1" in line for line in lines)
    assert "clocks" not in result.stdout  # the least important column went first
    assert all(len(line) <= 60 for line in lines), lines


def test_gpu_stats_json_has_every_field_and_the_agent(po_on_gpu: object, cli: Cli) -> None:
    result = cli("gpu-stats", "--json")
    assert result.code == 0, result.output
    data = json.loads(result.stdout)
    (card,) = data["gpus"]
    assert card["memory_total_bytes"] == 16 * 1024**3
    assert card["cuda_driver_version"] == "13.0"
    assert {k: card[k] for k in ("utilization_percent", "temperature_c", "fan_percent")} == {
        "utilization_percent": 37,
        "temperature_c": 61,
        "fan_percent": 45,
    }
    assert card["power_draw_w"] == 182.5 and card["power_limit_w"] == 320.0
    first, second = data["processes"]  # largest first
    assert (first["pid"], first["agent"], first["container_id"]) == (4242, "po", PO_CONTAINER[:12])
    assert first["used_bytes"] == int(14.1 * 1024**3)
    assert (second["pid"], second["agent"], second["container_id"]) == (1873, None, None)
    assert data["notes"] == []


def test_gpu_stats_without_docker_still_lists_processes_with_a_note(
    monkeypatch: pytest.MonkeyPatch, proc: Callable[[int, str], None], cli: Cli
) -> None:
    proc(4242, f"12:memory:/docker/{PO_CONTAINER}\n")
    install_unreachable(
        monkeypatch, DockerUnavailableError("Cannot reach the Docker Engine (connection refused).")
    )
    fake_nvml.install(monkeypatch, Scenario([device()], [process(4242, 14.1)]))
    result = cli("gpu-stats")
    assert result.code == 0, result.output
    assert "4242" in result.stdout and "14.1 GiB" in result.stdout
    assert "Agent names unknown: Cannot reach the Docker Engine" in result.stderr


def test_gpu_stats_idle_gpu_does_not_ask_docker(monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    install_unreachable(
        monkeypatch, AssertionError("Docker asked although no process runs in a container")
    )
    fake_nvml.install(monkeypatch, Scenario([device(used_gib=0.3)]))
    result = cli("gpu-stats")
    assert result.code == 0, result.output
    assert "No process is using a GPU." in result.stdout


def test_gpu_stats_without_nvml_is_one_sentence_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    fake_nvml.install_unavailable(monkeypatch)
    result = cli("gpu-stats", "--json")
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: No NVIDIA GPU can be read: the NVIDIA driver's NVML")
    assert "nvidia-smi" in result.stderr and "--gpus all" in result.stderr
    assert "Traceback" not in result.output


def test_watch_json_prints_one_object_per_refresh(
    monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    fake = fake_nvml.install(
        monkeypatch,
        Scenario([device(used_gib=14.6)], [process(77, 14.1)]),
        Scenario([device(used_gib=0.4)], []),
    )
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("agent_manager.cli.gpu_cmd.time.sleep", sleep)
    result = cli("gpu-stats", "--watch", "--json", "--interval", "0.5")
    assert result.code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert [p["pid"] for p in first["processes"]] == [77]
    assert second["processes"] == [] and second["gpus"][0]["memory_used_bytes"] < 1024**3
    assert sleeps == [0.5, 0.5] and fake.calls == 2


@pytest.mark.parametrize(
    ("cgroup", "expected"),
    [
        (f"0::/system.slice/docker-{PO_CONTAINER}.scope\n", PO_CONTAINER),  # v2, systemd driver
        (f"0::/docker/{PO_CONTAINER}\n", PO_CONTAINER),  # v2, cgroupfs driver
        (f"12:pids:/docker/{PO_CONTAINER}\n11:memory:/docker/{PO_CONTAINER}\n", PO_CONTAINER),
        ("0::/user.slice/user-1000.slice/session-2.scope\n", None),  # a host process
    ],
)
def test_container_id_from_cgroup(
    cgroup: str, expected: str | None, proc: Callable[[int, str], None]
) -> None:
    proc(99, cgroup)
    assert gpu.container_id_of(99) == expected


def test_container_id_of_a_vanished_pid_is_none(proc: Callable[[int, str], None]) -> None:
    assert gpu.container_id_of(31337) is None


# --- the adapter itself, over a fake pynvml module ---------------------------------------------


@pytest.fixture
def fresh_adapter() -> Iterator[None]:
    nvml.reset()
    yield
    nvml.reset()


def test_adapter_turns_unsupported_fields_into_none(
    monkeypatch: pytest.MonkeyPatch, fresh_adapter: None
) -> None:
    fake_nvml.install_pynvml(
        monkeypatch,
        FakePynvml(unsupported=("nvmlDeviceGetFanSpeed", "nvmlDeviceGetPowerUsage")),
    )
    (card,) = nvml.get_nvml().devices()
    assert card.fan_percent is None and card.power_draw_w is None
    assert card.power_limit_w == 320.0 and card.temperature_c == 55
    assert card.cuda_driver_version == "13.0" and card.driver_version == "580.95.05"
    assert (card.memory_total_bytes, card.memory_free_bytes) == (16 * 1024**3, 14 * 1024**3)


def test_adapter_counts_a_compute_and_graphics_process_once(
    monkeypatch: pytest.MonkeyPatch, fresh_adapter: None
) -> None:
    fake_nvml.install_pynvml(
        monkeypatch,
        FakePynvml(compute=[(10, 5 * 1024**3), (11, None)], graphics=[(10, 5 * 1024**3), (12, 1)]),
    )
    found = {p.pid: p.used_bytes for p in nvml.get_nvml().processes()}
    assert found == {10: 5 * 1024**3, 11: None, 12: 1}


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (FakePynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "NVML library (libnvidia-ml.so) was not found"),
        (FakePynvml.NVML_ERROR_DRIVER_NOT_LOADED, "kernel driver is not loaded"),
    ],
)
def test_adapter_explains_a_missing_driver(
    monkeypatch: pytest.MonkeyPatch, fresh_adapter: None, code: int, words: str
) -> None:
    fake_nvml.install_pynvml(monkeypatch, FakePynvml(init_error=code))
    with pytest.raises(GpuUnavailableError) as raised:
        nvml.get_nvml()
    assert words in raised.value.message
    assert raised.value.hint is not None and "nvidia-smi" in raised.value.hint


def test_adapter_reports_a_driver_without_gpus(
    monkeypatch: pytest.MonkeyPatch, fresh_adapter: None
) -> None:
    fake_nvml.install_pynvml(monkeypatch, FakePynvml(count=0))
    with pytest.raises(GpuUnavailableError, match="reports no GPU"):
        nvml.get_nvml().devices()
