"""`launch` and the CPU engine, against the fake Docker adapter and a fake NVML."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from agent_manager.errors import GpuUnavailableError, SpecError
from agent_manager.spec import engine_choice
from agent_manager.spec.workspace import resolve_workspace
from agent_manager.switch.context import LaunchEvents, LaunchOptions
from agent_manager.switch.core import switch_to as launch
from tests.conftest import CliResult
from tests.fakes import nvml as fake_nvml
from tests.fakes.docker import FakeDocker, install


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    fake_nvml.install_unavailable(monkeypatch)
    return install(monkeypatch)


def run(workspace: Path, agent: str, **options: object) -> list[str]:
    said: list[str] = []
    events = LaunchEvents(message=said.append, warning=said.append)
    launch(resolve_workspace(workspace), agent, LaunchOptions(**options), events)  # type: ignore[arg-type]
    return said


NO_GPU = engine_choice.MachineEngines(cuda=False, why_not="No NVIDIA GPU here (NVML reads none)")


def test_without_an_nvidia_gpu_a_plain_launch_runs_the_cpu_model_and_says_so_in_one_line(
    workspace: Path, fake: FakeDocker
) -> None:
    engine_choice.set_machine_probe(lambda: NO_GPU)
    said = run(workspace, "po")
    notes = [line for line in said if "CPU engine" in line]
    assert notes == [
        "No NVIDIA GPU here (NVML reads none): po runs on the CPU engine with "
        "Qwen/Qwen2.5-1.5B-Instruct at 8,192 tokens (engine: auto; --engine cuda forces the GPU)."
    ]
    compose = (workspace / "compose" / "docker-compose-po.yml").read_text()
    assert "vllm/vllm-openai-cpu:" in compose and "vllm/vllm-openai:" not in compose
    assert "Qwen/Qwen2.5-1.5B-Instruct" in compose and "'8192'" in compose


def test_a_forced_cuda_launch_where_cuda_cannot_run_pulls_nothing(
    workspace: Path, fake: FakeDocker
) -> None:
    engine_choice.set_machine_probe(lambda: NO_GPU)
    with pytest.raises(GpuUnavailableError, match="cannot run on the CUDA engine") as error:
        run(workspace, "po", engine="cuda")
    assert "--engine cpu" in (error.value.hint or "")
    assert not any(op.startswith(("up", "pull")) for op in fake.ops)


def test_compose_check_agrees_with_what_launch_ran(
    workspace: Path, fake: FakeDocker, cli: Callable[..., CliResult]
) -> None:
    engine_choice.set_machine_probe(lambda: NO_GPU)
    run(workspace, "po")
    result = cli("--home", str(workspace), "compose", "po", "--check")
    assert result.code == 0, result.output


def test_launch_engine_cpu_writes_the_cpu_compose_file_and_checks_no_gpu(
    workspace: Path, fake: FakeDocker
) -> None:
    said = run(workspace, "po", engine="cpu")
    assert not [line for line in said if "GPU" in line]
    compose = yaml.safe_load((workspace / "compose" / "docker-compose-po.yml").read_text())
    service = compose["services"]["vllm"]
    assert service["image"].startswith("vllm/vllm-openai-cpu:v0.33.0-")
    assert "deploy" not in service and service["environment"]["VLLM_CPU_KVCACHE_SPACE"] == "4"
    assert fake.running() == ["po"]


def test_a_local_model_folder_that_does_not_exist_is_refused_before_docker(
    workspace: Path, fake: FakeDocker
) -> None:
    spec = workspace / "agents" / "po.yaml"
    spec.write_text("model: /srv/nowhere/my-tune\nport: 8002\nengine: cpu\n")
    with pytest.raises(SpecError) as caught:
        run(workspace, "po")
    assert "'model': the folder /srv/nowhere/my-tune does not exist" in caught.value.message
    assert fake.ops == []


def test_plan_reads_a_local_model_folder_without_asking_the_hub(tmp_path: Path) -> None:
    from agent_manager.plan.checkpoint import read_checkpoint
    from tests.vllm_real.tiny_model import write_model

    folder = write_model(tmp_path / "tiny")
    facts = read_checkpoint(str(folder), None)
    assert facts.problems == [] and facts.config_source == "local cache"
    assert facts.shape is not None
    assert facts.weights.bytes == (folder / "model.safetensors").stat().st_size


def test_list_shows_a_cpu_agents_kv_space_instead_of_a_gpu_fraction(
    workspace: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = workspace / "agents" / "po.yaml"
    spec.write_text(spec.read_text().replace("engine: auto", "engine: cpu"))
    monkeypatch.setenv("AGENT_MANAGER_HOME", str(workspace))
    listed = cli("list", "--json")
    rows = {row["name"]: row for row in json.loads(listed.stdout)["agents"]}
    assert rows["po"]["engine"] == "cpu" and rows["po"]["cpu_kv_cache_gib"] == 4
    assert rows["po"]["model"] == "Qwen/Qwen2.5-1.5B-Instruct"  # the spec's cpu: block
    assert rows["architect"]["engine"] == "cuda" and rows["architect"]["cpu_kv_cache_gib"] is None
    assert "cpu, 4 GiB KV" in cli("list").stdout


def test_launch_engine_cpu_of_a_sleep_agent_says_it_switches_cold_and_renders_no_sleep(
    workspace: Path, fake: FakeDocker
) -> None:
    spec = workspace / "agents" / "po.yaml"
    spec.write_text(spec.read_text() + "switch: sleep\n")
    said = run(workspace, "po", engine="cpu")
    notices = [line for line in said if "no sleep mode" in line]
    assert notices == [
        "po: `--engine cpu` was asked for, and vLLM's CPU engine has no sleep mode "
        '("Sleep mode is not supported on current platform"); it switches cold.'
    ]
    compose = yaml.safe_load((workspace / "compose" / "docker-compose-po.yml").read_text())
    service = compose["services"]["vllm"]
    assert "--enable-sleep-mode" not in service["command"]
    assert "VLLM_SERVER_DEV_MODE" not in service["environment"]
    assert fake.running() == ["po"]


def test_a_workspace_default_sleep_makes_a_cpu_agent_cold_with_a_notice(
    workspace: Path, fake: FakeDocker
) -> None:
    (workspace / "agent-manager.yaml").write_text("defaults: {switch: sleep}\n")
    spec = workspace / "agents" / "po.yaml"
    spec.write_text(spec.read_text().replace("engine: auto", "engine: cpu"))
    said = run(workspace, "po")
    assert [line for line in said if "no sleep mode" in line] == [
        "po: 'switch: sleep' comes from the workspace defaults in agent-manager.yaml, and "
        "vLLM's CPU engine has no sleep mode (\"Sleep mode is not supported on current "
        'platform"); it switches cold.'
    ]


def test_auto_on_a_machine_without_gpu_turns_a_sleep_agent_cold_and_says_why(
    workspace: Path, fake: FakeDocker
) -> None:
    engine_choice.set_machine_probe(lambda: NO_GPU)
    (workspace / "agent-manager.yaml").write_text("defaults: {switch: sleep}\n")
    said = run(workspace, "po")
    assert [line for line in said if "no sleep mode" in line] == [
        "po: engine: auto found no NVIDIA GPU runtime, and vLLM's CPU engine has no sleep mode "
        '("Sleep mode is not supported on current platform"); it switches cold.'
    ]
    compose = (workspace / "compose" / "docker-compose-po.yml").read_text()
    assert "--enable-sleep-mode" not in compose
