"""Rendered compose files: golden output, and the promises each file keeps.

Regenerate the golden files after an intended change with UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from agent_manager.compose.render import render_compose, render_compose_text
from agent_manager.spec.agents import Agent, load_agents, parse_spec
from agent_manager.spec.vllm_args import check_flags
from agent_manager.spec.workspace import Workspace

GOLDEN = Path(__file__).parent / "golden"
REPO = Path(__file__).resolve().parents[1]


def golden_agent(name: str) -> Agent:
    path = GOLDEN / f"{name}.yaml"
    return parse_spec(name, Path(f"agents/{name}.yaml"), path.read_text())


def default_agents() -> list[Agent]:
    return load_agents(Workspace(REPO, "repo"))


@pytest.mark.parametrize("name", ["minimal", "full", "sleep"])
def test_rendered_compose_matches_the_golden_file(name: str):
    text = render_compose_text(golden_agent(name))
    expected = GOLDEN / f"{name}.compose.yml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected.write_text(text)
    assert text == expected.read_text()


def test_the_repository_compose_files_are_current():
    for agent in default_agents():
        on_disk = (REPO / "compose" / f"docker-compose-{agent.name}.yml").read_text()
        assert on_disk == render_compose_text(agent), f"run `agent-manager compose {agent.name}`"


def test_same_spec_renders_the_same_bytes_and_changes_change_the_hash():
    first, second = golden_agent("full"), golden_agent("full")
    assert render_compose_text(first) == render_compose_text(second)
    assert first.spec_hash() == second.spec_hash()
    hotter = parse_spec(
        "full", first.path, (GOLDEN / "full.yaml").read_text().replace("0.3", "0.4")
    )
    assert hotter.spec_hash() != first.spec_hash()


@pytest.mark.parametrize("agent", [*default_agents(), golden_agent("full")], ids=lambda a: a.name)
def test_every_emitted_flag_exists_in_vllm_033(agent: Agent):
    command = render_compose(agent)["services"]["vllm"]["command"]
    # The image's entrypoint is `vllm serve`: the command starts with the model, never `serve`.
    assert command[0] == agent.spec.model
    found = check_flags(command[1:])
    assert {written for written, _ in found} >= {"--served-model-name", "--port"}


def test_generated_commands_carry_the_spec_settings():
    service = render_compose(golden_agent("full"))["services"]["vllm"]
    command = service["command"]
    assert command[command.index("--served-model-name") + 1] == "architect-14b"
    assert command[command.index("--max-model-len") + 1] == "auto"
    assert command[command.index("--gpu-memory-utilization") + 1] == "0.85"
    assert command[command.index("--kv-cache-dtype") + 1] == "fp8"
    assert "--enforce-eager" in command and "--disable-prefix-caching" in command
    generation = json.loads(command[command.index("--override-generation-config") + 1])
    assert generation == {"temperature": 0.3, "top_p": 0.8}
    assert json.loads(command[command.index("--speculative-config") + 1])["method"] == "ngram"
    assert command[-4:] == [
        "--cpu-offload-gb",
        "2",
        "--disable-access-log-for-endpoints",
        "/health,/metrics",
    ]
    assert service["image"] == "vllm/vllm-openai:v0.33.0-cu130"


def test_the_pinned_image_is_vllm_0330():
    service = render_compose(golden_agent("minimal"))["services"]["vllm"]
    assert service["image"] == "vllm/vllm-openai:v0.33.0"


def test_ports_are_published_on_loopback_unless_the_spec_asks():
    assert render_compose(golden_agent("minimal"))["services"]["vllm"]["ports"] == [
        "127.0.0.1:8002:8000"
    ]
    assert render_compose(golden_agent("full"))["services"]["vllm"]["ports"] == [
        "0.0.0.0:9000:8000"
    ]


def test_secrets_are_passed_by_reference_only():
    agent = golden_agent("full")
    text = render_compose_text(agent)
    environment = render_compose(agent)["services"]["vllm"]["environment"]
    assert environment["VLLM_API_KEY"] == "${ARCHITECT_API_KEY:-}"
    assert environment["HF_TOKEN"] == "${ARCHITECT_HF_TOKEN}"
    assert (
        render_compose(golden_agent("minimal"))["services"]["vllm"]["environment"]["HF_TOKEN"]
        == "${HF_TOKEN:-}"
    )
    assert "hf_" not in text


def test_no_vllm_setting_is_passed_as_an_environment_variable_vllm_ignores():
    for agent in default_agents():
        environment = render_compose(agent)["services"]["vllm"]["environment"]
        assert [k for k in environment if k.startswith("VLLM_")] == []


def test_gpu_cache_healthcheck_and_restart_policy():
    service = render_compose(golden_agent("minimal"))["services"]["vllm"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert service["ipc"] == "host"
    assert "${HF_HOME:-~/.cache/huggingface}:/root/.cache/huggingface" in service["volumes"]
    assert "agent-manager-vllm-cache:/root/.cache/vllm" in service["volumes"]
    assert service["restart"] == "no"
    assert "/health" in " ".join(service["healthcheck"]["test"])
    assert service["healthcheck"]["start_period"] == "20m"


def test_labels_let_the_tool_find_its_containers():
    agent = golden_agent("full")
    labels = render_compose(agent)["services"]["vllm"]["labels"]
    assert labels == {
        "io.agent-manager.agent": "full",
        "io.agent-manager.served-name": "architect-14b",
        "io.agent-manager.port": "9000",
        "io.agent-manager.spec-hash": agent.spec_hash(),
    }


def test_the_header_says_generated_and_how_to_customise():
    text = render_compose_text(golden_agent("minimal"))
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert "Generated by agent-manager" in header[0]
    assert any("docker-compose-minimal.override.yml" in line for line in header)
    assert yaml.safe_load(text)["name"] == "agent-manager-minimal"


def test_packaged_flag_table_is_vllms_own():
    shared = REPO.parent / "shared" / "vllm" / "serve-args-0.33.0.json"
    packaged = REPO / "src" / "agent_manager" / "data" / "serve-args-0.33.0.json"
    assert json.loads(packaged.read_text()) == json.loads(shared.read_text())


# Plain scalars that Compose's YAML 1.2 reader takes for numbers but a YAML 1.1 writer leaves
# bare: unquoted, `1e3` would reach the container as "1000" and a hash as "1.1e+12".
NUMBER_LOOKING = ["1e3", "1116667349e3", "0o17", "0x1F", "1_000", ".inf", "-.Inf", ".NaN", "017"]


def number_looking_spec() -> tuple[Agent, str]:
    """A po spec with NUMBER_LOOKING env values and a port that makes its hash look like a
    float Compose can read (like 1e12); the Agent and the spec's text."""
    env = "".join(f"  AM_VALUE_{i}: '{value}'\n" for i, value in enumerate(NUMBER_LOOKING))
    for port in range(20000, 65536):
        text = f"model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: {port}\nenv:\n{env}"
        agent = parse_spec("po", Path("agents/po.yaml"), text)
        if re.fullmatch(r"[0-9]+e[0-9]{1,2}", agent.spec_hash()):
            return agent, text
    raise AssertionError("no port gives a float-looking hash")


def test_values_compose_would_read_as_numbers_are_written_quoted():
    agent, _ = number_looking_spec()

    text = render_compose_text(agent)

    assert f"io.agent-manager.spec-hash: '{agent.spec_hash()}'" in text
    for i, value in enumerate(NUMBER_LOOKING):
        assert f"AM_VALUE_{i}: '{value}'" in text
    parsed = yaml.safe_load(text)["services"]["vllm"]
    assert parsed["labels"]["io.agent-manager.spec-hash"] == agent.spec_hash()
