"""`doctor`: every check's verdict from plain values, and the whole report on this machine
(Docker present, no GPU) and on faked machines."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent_manager.adapters import compose
from agent_manager.adapters.docker import EngineInfo
from agent_manager.doctor import checks as doctor
from agent_manager.doctor.checks import run_checks
from agent_manager.doctor.verdicts import (
    TOOLKIT_FIX,
    Check,
    Status,
    disk_verdict,
    driver_verdict,
    hf_token_verdict,
    port_verdict,
    runtime_verdict,
    vram_verdict,
)
from agent_manager.errors import DockerUnavailableError
from agent_manager.observe.ports import PortUse, port_use
from agent_manager.spec.agents import Agent, AgentSpec
from agent_manager.spec.workspace import Workspace
from tests.conftest import CliResult
from tests.fakes import nvml as fake_nvml
from tests.fakes.docker import install_docker, install_unreachable
from tests.standin.process import free_port

Cli = Callable[..., CliResult]
GIB = 1024**3


def agent(name: str = "po", **fields: object) -> Agent:
    spec = AgentSpec.model_validate(
        {"model": "Qwen/Qwen2.5-7B-Instruct-AWQ", "port": 8002, **fields}
    )
    return Agent(name=name, path=Path(f"agents/{name}.yaml"), spec=spec)


def free_ports(workspace: Path) -> Path:
    """Move every agent of the workspace to a port nothing uses (other tests use 8000-8002)."""
    for spec in (workspace / "agents").glob("*.yaml"):
        text = re.sub(r"(?m)^port: \d+$", f"port: {free_port()}", spec.read_text())
        spec.write_text(text)
    return workspace


def rows(result: CliResult) -> dict[str, list[dict[str, str]]]:
    by_name: dict[str, list[dict[str, str]]] = {}
    for check in json.loads(result.stdout)["checks"]:
        by_name.setdefault(check["name"], []).append(check)
    return by_name


@pytest.fixture
def listening() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


# --- verdicts -----------------------------------------------------------------------------------


def test_a_driver_older_than_r580_fails_with_the_upgrade_and_the_compatibility_mode() -> None:
    check = driver_verdict("570.133.07", "12.8")
    assert check.status is Status.FAIL
    assert "older than R580" in check.detail and "CUDA 13" in check.detail
    assert check.fix is not None
    assert "580 or newer" in check.fix and "VLLM_ENABLE_CUDA_COMPATIBILITY" in check.fix
    assert driver_verdict("580.95.05", "13.0").status is Status.OK
    assert driver_verdict("590.1", None).status is Status.OK


def test_too_little_free_vram_for_an_agents_fraction_warns_with_the_numbers() -> None:
    busy = fake_nvml.device(total_gib=16, used_gib=4)  # 12 GiB free
    small = agent("small", gpu_memory_fraction=0.5, port=1)
    check = vram_verdict([busy], [agent("po", gpu_memory_fraction=0.9), small])
    assert check.status is Status.WARN
    assert "12.0 of 16.0 GiB free" in check.detail
    assert "po 0.90 x 16.0 = 14.4 GiB" in check.detail
    assert "small" not in check.detail  # 8 GiB fits in what is free
    assert "launch stops it first" not in check.detail
    held = vram_verdict([busy], [agent("po")], running=["architect"])
    assert "Agent architect is running and holds part of it; launch stops it first." in held.detail
    assert vram_verdict([fake_nvml.device(used_gib=0.5)], [agent()]).status is Status.OK


def test_gpu_runtime_is_found_as_runtime_cdi_spec_or_toolkit_hook_or_fails() -> None:
    assert runtime_verdict(["nvidia", "runc"], [], []).status is Status.OK
    assert runtime_verdict(["runc"], ["/etc/cdi/nvidia.yaml"], []).status is Status.OK
    assert runtime_verdict(["runc"], [], ["nvidia-ctk"]).status is Status.OK
    missing = runtime_verdict(["runc"], [], [])
    assert missing.status is Status.FAIL and missing.fix == TOOLKIT_FIX


def test_disk_space_thresholds() -> None:
    path = Path("/cache/hub")
    assert disk_verdict(path, 5 * GIB).status is Status.FAIL
    assert disk_verdict(path, 20 * GIB).status is Status.WARN
    assert disk_verdict(path, 80 * GIB).status is Status.OK
    assert "80.0 GiB free" in disk_verdict(path, 80 * GIB).detail


def test_hf_token_verdicts() -> None:
    qwen, llama = "Qwen/Qwen2.5-7B-Instruct-AWQ", "meta-llama/Llama-3.1-8B-Instruct"
    assert hf_token_verdict({"HF_TOKEN": "hf_x"}, None, [llama], []).status is Status.OK
    gated = hf_token_verdict({"HUGGING_FACE_HUB_TOKEN": "hf_x"}, None, [llama, qwen], [])
    assert gated.status is Status.WARN
    assert llama in gated.detail and qwen not in gated.detail
    assert "containers receive HF_TOKEN only" in gated.detail
    assert hf_token_verdict({}, None, [llama], [llama]).status is Status.OK  # cached: offline
    unknown = hf_token_verdict({}, None, [qwen], [])
    assert unknown.status is Status.OK and "unknown offline" in unknown.detail


def test_port_in_use_is_seen_and_a_running_agent_on_its_own_port_is_fine(listening: int) -> None:
    assert port_use("127.0.0.1", listening) is PortUse.IN_USE
    assert port_use("127.0.0.1", free_port()) is PortUse.FREE
    assert port_use("192.0.2.1", free_port()) is PortUse.NOT_LOCAL
    po = agent(port=listening)
    assert port_verdict(po, PortUse.IN_USE, "po", []).status is Status.OK
    taken = port_verdict(po, PortUse.IN_USE, None, ["container web (image nginx)"])
    assert taken.status is Status.FAIL
    assert "in use by container web (image nginx)" in taken.detail
    assert taken.fix is not None and "change 'port' in agents/po.yaml" in taken.fix


def test_one_broken_check_does_not_hide_the_others(tmp_path: Path) -> None:
    def broken() -> list[Check]:
        raise RuntimeError("boom")

    report = run_checks(
        Workspace(tmp_path, "test"),
        [("first", broken), ("second", lambda: [doctor.ok("second", "fine")])],
    )
    assert [(c.name, c.status) for c in report.checks] == [
        ("first", Status.FAIL),
        ("second", Status.OK),
    ]
    assert "RuntimeError: boom" in report.checks[0].detail
    assert report.failed == 1 and not report.ok


# --- the whole report ---------------------------------------------------------------------------


@pytest.mark.docker
def test_doctor_on_a_machine_with_docker_and_no_gpu_finds_docker_and_compose(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.install_unavailable(monkeypatch)
    result = cli("--home", str(free_ports(workspace)), "doctor", "--json")
    checks = rows(result)
    assert checks["docker"][0]["status"] == "OK"
    assert re.search(
        r"Docker Engine \S+ \(API 1\.\d+\) is reachable", checks["docker"][0]["detail"]
    )
    assert checks["compose"][0]["status"] == "OK"
    assert "Docker Compose 2." in checks["compose"][0]["detail"]
    assert checks["nvml"][0]["status"] == "FAIL"
    assert "Install the NVIDIA driver" in checks["nvml"][0]["fix"]
    assert checks["nvidia driver"][0]["status"] == "WARN"
    assert result.code == 1, "a FAIL line (nvml) makes doctor exit 1"
    assert "Traceback" not in result.stderr


def test_doctor_without_a_gpu_prints_the_nvml_failure_and_its_fix(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.install_unavailable(monkeypatch)
    result = cli("--home", str(free_ports(workspace)), "doctor")
    assert result.code == 1
    assert re.search(r"FAIL\s+│ nvml\s+│ No NVIDIA GPU can be read", result.stdout)
    assert "fix: Install the NVIDIA driver" in result.stdout
    assert re.search(r"WARN\s+│ nvidia driver\s+│ Not checked: NVML cannot be read", result.stdout)
    assert "failed" in result.stderr and "fix the FAIL lines" in result.stderr


def test_doctor_with_docker_down_still_runs_every_other_check(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_unreachable(
        monkeypatch,
        DockerUnavailableError("Cannot reach the Docker Engine (connection refused).", "Start it."),
    )
    fake_nvml.install(monkeypatch)
    result = cli("--home", str(free_ports(workspace)), "doctor", "--json")
    assert result.code == 1
    checks = rows(result)
    assert checks["docker"][0] == {
        "name": "docker",
        "status": "FAIL",
        "detail": "Cannot reach the Docker Engine (connection refused).",
        "fix": "Start it.",
    }
    assert checks["gpu runtime"][0]["status"] == "WARN"
    assert checks["nvml"][0]["status"] == "OK"
    assert checks["nvidia driver"][0]["status"] == "OK"
    assert checks["specs"][0]["status"] == "OK"
    ports = [c for name, group in checks.items() if name.startswith("port ") for c in group]
    assert [c["status"] for c in ports] == ["OK", "OK", "OK"]


def test_doctor_on_a_ready_machine_says_ok_and_exits_0(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = str(free_ports(workspace))
    assert cli("--home", home, "compose").code == 0
    fake_nvml.install(monkeypatch)
    docker = install_docker(monkeypatch)  # every image is pulled, no agent runs
    docker.engine = EngineInfo("27.3.1", "1.47", ("nvidia", "runc"), "runc", ())
    monkeypatch.setattr(compose, "compose_version", lambda: "2.40.3")
    monkeypatch.setattr(doctor, "free_bytes", lambda path: 200 * GIB)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    result = cli("--home", home, "doctor")
    assert result.code == 0, result.stdout
    assert "WARN" not in result.stdout and "FAIL" not in result.stdout
    assert "Everything needed to serve the agents is in place." in result.stderr


def test_doctor_fails_a_port_another_program_holds_and_a_broken_spec(
    cli: Cli, workspace: Path, listening: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.install(monkeypatch)
    free_ports(workspace)
    po = workspace / "agents" / "po.yaml"
    po.write_text(re.sub(r"(?m)^port: \d+$", f"port: {listening}", po.read_text()))
    architect = workspace / "agents" / "architect.yaml"
    architect.write_text(architect.read_text().replace("temperature:", "temprature:"))
    result = cli("--home", str(workspace), "doctor", "--json")
    assert result.code == 1
    checks = rows(result)
    port = checks[f"port {listening}"][0]
    assert port["status"] == "FAIL" and "launching po would fail" in port["detail"]
    assert re.search(r"in use by pid \d+ \(", port["detail"])  # this test process listens
    specs = checks["specs"][0]
    assert specs["status"] == "FAIL"
    assert "unknown field 'temprature'" in specs["detail"] and "temperature" in specs["fix"]
    compose = checks["compose files"][0]
    assert compose["status"] == "WARN" and "developer (missing)" in compose["detail"]


def test_port_hints_name_the_spec_where_the_workspace_really_is(
    cli: Cli, workspace: Path, listening: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.install(monkeypatch)
    free_ports(workspace)
    po = workspace / "agents" / "po.yaml"
    po.write_text(re.sub(r"(?m)^port: \d+$", f"port: {listening}", po.read_text()))
    result = cli("--home", str(workspace), "doctor", "--json")
    port = rows(result)[f"port {listening}"][0]
    # The workspace is under tmp_path, not in the current directory: its full path.
    assert f"change 'port' in {po}." in port["fix"]


def test_the_cpu_engine_needs_avx512_or_avx2_on_x86_and_runs_on_arm() -> None:
    from agent_manager.doctor.cpu import cpu_flags, cpu_isa_verdict

    assert cpu_isa_verdict("x86_64", {"avx2", "avx512f"}).detail.startswith("x86_64 with AVX-512")
    assert cpu_isa_verdict("x86_64", {"sse4_2", "avx2"}).status is Status.OK
    old = cpu_isa_verdict("x86_64", {"sse4_2", "avx"})
    assert old.status is Status.FAIL and "AVX2" in old.detail
    assert cpu_isa_verdict("aarch64", set()).status is Status.OK
    assert cpu_isa_verdict("riscv64", set()).status is Status.WARN
    assert cpu_flags("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n") == {"fpu", "avx2", "avx512f"}


def test_ram_for_cpu_agents_warns_below_8_gib_available() -> None:
    from agent_manager.doctor.cpu import meminfo_bytes, ram_verdict

    gib = 1024**3
    assert ram_verdict(32 * gib, 20 * gib).status is Status.OK
    low = ram_verdict(8 * gib, 3 * gib)
    assert low.status is Status.WARN and "3.0 of 8.0 GiB" in low.detail
    assert "cpu_kv_cache_gib" in (low.fix or "")
    assert meminfo_bytes("MemTotal: 2048 kB\nMemAvailable: 1024 kB\n") == (2048 * 1024, 1024 * 1024)
