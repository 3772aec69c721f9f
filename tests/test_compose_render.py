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
from agent_manager.spec.agents import OWNED_FLAGS, Agent, parse_spec
from agent_manager.spec.engine_choice import gpu_cluster
from agent_manager.spec.loader import load_agents
from agent_manager.spec.serve_argv import model_argument
from agent_manager.spec.vllm_args import check_flags, flag_table
from agent_manager.spec.workspace import Workspace

GOLDEN = Path(__file__).parent / "golden"
REPO = Path(__file__).resolve().parents[1]


# Golden files are rendered for an x86 host; the CPU image's arch suffix follows the host.
MACHINE = "x86_64"


def golden_agent(name: str) -> Agent:
    path = GOLDEN / f"{name}.yaml"
    return parse_spec(name, Path(f"agents/{name}.yaml"), path.read_text())


def default_agents() -> list[Agent]:
    return load_agents(Workspace(REPO, "repo"), machine=gpu_cluster)


@pytest.mark.parametrize("name", ["minimal", "full", "dollars", "cpu", "sleep"])
def test_rendered_compose_matches_the_golden_file(name: str):
    text = render_compose_text(golden_agent(name), MACHINE)
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


@pytest.mark.parametrize(
    "agent", [*default_agents(), golden_agent("full"), golden_agent("cpu")], ids=lambda a: a.name
)
def test_every_emitted_flag_exists_in_vllm_033(agent: Agent):
    command = render_compose(agent)["services"]["vllm"]["command"]
    # The image's entrypoint is `vllm serve`: the command starts with the model, never `serve`.
    assert command[0] == model_argument(agent)
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
    # `:?`: a hand-run `docker compose up` without the key refuses to start instead of serving
    # everyone without a key.
    assert environment["VLLM_API_KEY"].startswith("${ARCHITECT_API_KEY:?")
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


def test_packaged_flag_table_is_self_consistent():
    """The flag table shipped in the package (a clean clone has nothing else to compare with):
    every entry names its flags once, and every flag a spec field owns is in it."""
    packaged = REPO / "src" / "agent_manager" / "data" / "serve-args-0.33.0.json"
    entries = [e for e in json.loads(packaged.read_text()) if "flags" in e]
    names = [name for entry in entries for name in entry["flags"]]
    assert len(entries) > 300 and len(names) == len(set(names))
    assert all(
        name.startswith("-") and entry["dest"] for entry in entries for name in entry["flags"]
    )
    table = flag_table()
    assert {flag.dest for name in names if (flag := table.lookup(name))} >= set(OWNED_FLAGS)


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


def test_a_dollar_in_a_user_value_is_written_as_two_so_compose_keeps_it():
    service = render_compose(golden_agent("dollars"), MACHINE)["services"]["vllm"]
    command = service["command"]
    assert command[command.index("--revision") + 1] == "$${HF_TOKEN}"
    assert command[command.index("--chat-template") + 1] == "$$HOME/templates/chat.jinja"
    assert '"model":"$$HOME/draft"' in command[command.index("--speculative-config") + 1]
    assert service["environment"]["VLLM_LOGGING_PREFIX"] == "[$$USER] "
    # The project's own references, and a secret passed by reference, stay references.
    assert service["environment"]["HF_TOKEN"] == "${PO_HF_TOKEN}"
    assert service["environment"]["HF_HUB_OFFLINE"] == "${AGENT_MANAGER_HF_OFFLINE:-0}"
    assert service["volumes"][0].startswith("${HF_HOME:-")


def test_a_cpu_agent_runs_the_cpu_image_without_a_gpu():
    service = render_compose(golden_agent("cpu"), MACHINE)["services"]["vllm"]
    assert service["image"] == "vllm/vllm-openai-cpu:v0.33.0-x86_64"
    assert "deploy" not in service
    assert service["ipc"] == "host"
    assert service["cap_add"] == ["SYS_NICE"]
    assert service["environment"]["VLLM_CPU_KVCACHE_SPACE"] == "2"
    # The spec's env wins over the default thread binding ("auto").
    assert service["environment"]["VLLM_CPU_OMP_THREADS_BIND"] == "0-3"
    assert "--gpu-memory-utilization" not in service["command"]


def test_the_cpu_image_follows_the_host_architecture():
    for machine, suffix in (("aarch64", "arm64"), ("arm64", "arm64"), ("AMD64", "x86_64")):
        service = render_compose(golden_agent("cpu"), machine)["services"]["vllm"]
        assert service["image"] == f"vllm/vllm-openai-cpu:v0.33.0-{suffix}"


def test_a_local_model_folder_is_mounted_read_only_and_served_under_the_agent_name():
    service = render_compose(golden_agent("cpu"), MACHINE)["services"]["vllm"]
    mount = {
        "type": "bind",
        "source": "/srv/models/qwen2.5-0.5b-instruct",
        "target": "/models/cpu",
        "read_only": True,
        "bind": {"create_host_path": False},
    }
    assert mount in service["volumes"]
    command = service["command"]
    assert command[0] == "/models/cpu"
    assert command[command.index("--served-model-name") + 1] == "cpu"
