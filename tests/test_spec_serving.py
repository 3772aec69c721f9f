"""What an agent speaks: parser names checked against vLLM 0.33's own registries, the model's
task, aliases unique across the workspace, and the flags these fields put in the compose file."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from agent_manager.errors import SpecError
from agent_manager.spec.agents import parse_spec
from agent_manager.spec.loader import load_agents
from agent_manager.spec.serve_argv import serve_argv
from agent_manager.spec.serving import DEFAULT_IDLE_MINUTES
from agent_manager.spec.vllm_args import check_flags
from agent_manager.spec.workspace import Workspace

BASE = "model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\n"


def parsed(extra: str = ""):
    return parse_spec("po", Path("agents/po.yaml"), BASE + extra)


def refused(extra: str) -> str:
    with pytest.raises(SpecError) as caught:
        parsed(extra)
    return f"{caught.value.message} {caught.value.hint or ''}"


def test_the_vendored_parser_list_is_vllm_0_33s_with_the_names_users_need():
    text = (resources.files("agent_manager") / "data" / "parsers-0.33.0.json").read_text()
    data = json.loads(text)
    assert data["vllm_version"] == "0.33.0"
    assert set(data) == {"vllm_version", "tool_parsers", "reasoning_parsers"}
    for key in ("tool_parsers", "reasoning_parsers"):
        names = data[key]
        assert names == sorted(set(names)) and len(names) > 30
        assert all(isinstance(n, str) and n and " " not in n for n in names)
    assert {"hermes", "llama3_json", "mistral", "qwen3_coder", "openai"} <= set(
        data["tool_parsers"]
    )
    assert {"qwen3", "deepseek_r1", "openai_gptoss"} <= set(data["reasoning_parsers"])


def test_a_tool_parser_turns_on_auto_tool_choice_with_that_parser():
    argv = serve_argv(parsed("tool_parser: hermes\nreasoning_parser: qwen3\n"))
    tail = argv[argv.index("--enable-auto-tool-choice") :]
    assert tail == ["--enable-auto-tool-choice", "--tool-call-parser", "hermes",
                    "--reasoning-parser", "qwen3"]  # fmt: skip
    check_flags(argv[1:])  # every flag is one vLLM 0.33.0 knows


def test_none_turns_a_parser_off_and_no_parser_means_no_flag():
    for agent in (parsed(), parsed("tool_parser: none\nreasoning_parser: none\n")):
        argv = serve_argv(agent)
        assert "--tool-call-parser" not in argv and "--enable-auto-tool-choice" not in argv
        assert "--reasoning-parser" not in argv


def test_an_unknown_parser_is_refused_with_the_closest_name():
    message = refused("tool_parser: hermess\n")
    assert "agents/po.yaml:3" in message and "'hermess' is not a vLLM 0.33.0" in message
    assert "did you mean 'hermes'?" in message
    assert "qwen3" in refused("reasoning_parser: qwen-3\n")


def test_the_parser_flags_in_extra_args_point_to_the_fields():
    assert "tool_parser" in refused("extra_args: ['--tool-call-parser', 'hermes']\n")
    assert "reasoning_parser" in refused("extra_args: ['--reasoning-parser', 'qwen3']\n")


def test_a_pooling_agent_runs_vllms_pooling_runner():
    argv = serve_argv(parsed("task: pooling\n"))
    assert argv[argv.index("--runner") + 1] == "pooling"
    assert "--runner" not in serve_argv(parsed("task: transcription\n"))
    assert "'generate', 'pooling' or 'transcription'" in refused("task: embed\n")


def test_idle_minutes_defaults_to_thirty_and_zero_means_never():
    assert parsed().spec.idle_minutes == DEFAULT_IDLE_MINUTES == 30
    assert parsed("idle_minutes: 0\n").spec.idle_minutes == 0
    assert "idle_minutes" in refused("idle_minutes: -1\n")


def test_aliases_must_be_names_and_listed_once():
    assert parsed("aliases: [gpt-4o, claude-sonnet-4-5]\n").spec.aliases == [
        "gpt-4o",
        "claude-sonnet-4-5",
    ]
    assert "listed twice" in refused("aliases: [x, x]\n")
    assert "letters, digits" in refused("aliases: ['has space']\n")


def test_the_default_agents_call_tools_with_the_hermes_parser(workspace: Path):
    agents = load_agents(Workspace(workspace, "test"))
    assert {a.name: a.spec.tool_parser for a in agents} == dict.fromkeys(
        ("architect", "developer", "po"), "hermes"
    )
    assert {a.name: a.spec.aliases for a in agents}["developer"] == ["dev"]


@pytest.mark.parametrize(
    ("po_extra", "clash"),
    [
        ("aliases: [dev]\n", "alias 'dev' is also the alias of developer"),
        ("served_name: architect\n", "served_name 'architect' is also the agent name"),
        ("aliases: [developer]\n", "alias 'developer' is also the agent name of developer"),
    ],
)
def test_a_model_name_two_agents_answer_to_is_refused(workspace: Path, po_extra: str, clash: str):
    spec = workspace / "agents" / "po.yaml"
    spec.write_text(spec.read_text() + po_extra)
    with pytest.raises(SpecError) as caught:
        load_agents(Workspace(workspace, "test"))
    assert clash in caught.value.message, caught.value.message
    assert "po.yaml" in caught.value.message
    with pytest.raises(SpecError):  # also when only one agent is named
        load_agents(Workspace(workspace, "test"), ["po"])


def test_router_only_fields_leave_the_container_current():
    plain = parsed()
    assert parsed("aliases: [gpt-4o]\nidle_minutes: 5\n").spec_hash() == plain.spec_hash()
    assert parsed("tool_parser: hermes\n").spec_hash() != plain.spec_hash()
