"""Real Docker Compose accepts the generated files, and the stand-in runs from them."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import yaml

from tests.conftest import CliResult
from tests.integration.conftest import StandinWorkspace
from tests.test_compose_render import NUMBER_LOOKING, number_looking_spec

DEFAULT_AGENTS = ["architect", "developer", "po"]


def test_the_workspace_holds_the_default_agents(standin_workspace: StandinWorkspace) -> None:
    assert standin_workspace.agents == DEFAULT_AGENTS


@pytest.mark.parametrize("agent", DEFAULT_AGENTS)
@pytest.mark.parametrize("with_override", [False, True], ids=["generated", "with-override"])
def test_docker_compose_config_accepts_the_generated_file(
    standin_workspace: StandinWorkspace, agent: str, with_override: bool
) -> None:
    result = standin_workspace.compose(agent, "config", "-q", with_override=with_override)

    assert result.returncode == 0, result.stderr


def test_the_override_swaps_the_image_and_drops_only_the_gpu_reservation(
    standin_workspace: StandinWorkspace,
) -> None:
    merged = standin_workspace.compose("po", "config", "--format", "json")
    generated = yaml.safe_load(standin_workspace.compose_file("po").read_text())["services"]

    assert merged.returncode == 0, merged.stderr
    service = yaml.safe_load(merged.stdout)["services"]["vllm"]
    assert service["image"] == "agent-manager-standin:0.33.0"
    assert "deploy" not in service
    assert service["command"] == generated["vllm"]["command"]
    assert service["labels"] == generated["vllm"]["labels"]
    assert service["healthcheck"]["test"] == generated["vllm"]["healthcheck"]["test"]


def test_the_standin_starts_from_the_generated_file_and_answers_models(
    standin_workspace: StandinWorkspace,
) -> None:
    up = standin_workspace.compose("po", "up", "-d")
    assert up.returncode == 0, up.stderr

    models = standin_workspace.wait_http("po", "/v1/models").json()
    service = yaml.safe_load(standin_workspace.compose_file("po").read_text())["services"]["vllm"]
    healthcheck = standin_workspace.compose(
        "po", "exec", "-T", "vllm", *service["healthcheck"]["test"][1:]
    )

    assert [card["id"] for card in models["data"]] == ["po"]
    assert healthcheck.returncode == 0, healthcheck.stderr  # the generated healthcheck passes


@pytest.mark.parametrize("agent", DEFAULT_AGENTS)
def test_every_flag_the_generated_command_emits_is_accepted(
    standin_workspace: StandinWorkspace, agent: str
) -> None:
    """The stand-in exits 2 on any flag or choice vLLM 0.33.0 would refuse."""
    up = standin_workspace.compose(agent, "up", "-d")
    assert up.returncode == 0, up.stderr

    standin_workspace.wait_http(agent, "/health")
    logs = standin_workspace.compose(agent, "logs", "--no-color").stdout

    assert "unrecognized arguments" not in logs
    assert "invalid choice" not in logs
    assert "Application startup complete." in logs


def test_a_refused_flag_stops_the_container_with_exit_2(
    standin_workspace: StandinWorkspace,
) -> None:
    """The rig itself can fail: a flag vLLM 0.33 removed makes the container exit 2."""
    override = standin_workspace.override_file("po")
    generated = yaml.safe_load(standin_workspace.compose_file("po").read_text())
    command = [*generated["services"]["vllm"]["command"], "--swap-space", "4"]
    override.write_text(
        override.read_text() + "    command: " + yaml.safe_dump(command, default_flow_style=True)
    )

    run = standin_workspace.compose("po", "run", "--rm", "--no-deps", "-T", "vllm", timeout=60)

    assert run.returncode == 2
    assert "vllm serve: error: unrecognized arguments: --swap-space 4" in run.stderr + run.stdout


def test_a_standin_told_to_fail_exits_1_with_vllms_message(
    standin_workspace: StandinWorkspace,
) -> None:
    standin_workspace.set_standin_env("po", {"STANDIN_FAIL": "oom", "STANDIN_LOAD_SECONDS": "0"})

    run = standin_workspace.compose("po", "run", "--rm", "--no-deps", "-T", "vllm", timeout=60)

    assert run.returncode == 1
    assert "(original error: CUDA out of memory." in run.stdout
    assert "EngineCore failed to start." in run.stdout


def test_values_that_look_like_numbers_reach_compose_unchanged(
    standin_workspace: StandinWorkspace, cli: Callable[..., CliResult]
) -> None:
    """Compose reads YAML 1.2: a bare `1116667349e3` hash would become 1.116667349e+12."""
    agent, spec_text = number_looking_spec()
    (standin_workspace.root / "agents" / "po.yaml").write_text(spec_text)
    assert cli("compose", "po").code == 0

    merged = standin_workspace.compose("po", "config", "--format", "json")

    assert merged.returncode == 0, merged.stderr
    service = json.loads(merged.stdout)["services"]["vllm"]
    assert service["labels"]["io.agent-manager.spec-hash"] == agent.spec_hash()
    for i, value in enumerate(NUMBER_LOOKING):
        assert service["environment"][f"AM_VALUE_{i}"] == value
