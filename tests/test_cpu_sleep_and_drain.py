"""`engine: cpu` never runs with sleep mode (vLLM 0.33 refuses: "Sleep mode is not supported
on current platform."), and every rendered agent drains on a stop (--shutdown-timeout below the
compose stop_grace_period)."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest

from agent_manager.compose.render import render_compose
from agent_manager.errors import SpecError
from agent_manager.spec.agents import parse_spec
from agent_manager.spec.serve_argv import serve_argv
from agent_manager.spec.vllm_args import SHUTDOWN_TIMEOUT_S, STOP_GRACE_PERIOD_S
from tests.conftest import CliResult

Cli = Callable[..., CliResult]
MODEL = "model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\n"


def spec(text: str, defaults: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    return parse_spec("po", Path("agents/po.yaml"), text, defaults)


def test_a_spec_writing_both_cpu_and_sleep_is_refused_naming_both_fields() -> None:
    with pytest.raises(SpecError) as refused:
        spec(MODEL + "engine: cpu\nswitch: sleep\n")
    error = refused.value
    assert error.exit_code == 2
    assert error.message.startswith("agents/po.yaml:3: po asks for 'engine: cpu' and, at line 4,")
    assert "'switch: sleep'" in error.message
    assert "Sleep mode is not supported on current platform" in error.message
    assert error.hint is not None and "switch: cold" in error.hint


def test_cli_exits_2_on_a_cpu_sleep_spec(workspace: Path, cli: Cli) -> None:
    path = workspace / "agents" / "po.yaml"
    text = path.read_text().replace("engine: auto", "engine: cpu")
    path.write_text(text + "switch: sleep\n")
    result = cli("--home", str(workspace), "launch", "po")
    assert result.code == 2
    said = " ".join(result.stderr.split())
    assert "'engine: cpu'" in said and "'switch: sleep'" in said


@pytest.mark.parametrize(
    ("text", "defaults", "source"),
    [
        (MODEL + "engine: cpu\n", {"switch": "sleep"}, "'switch: sleep' comes from"),
        (MODEL + "switch: sleep\n", {"engine": "cpu"}, "'engine: cpu' comes from"),
    ],
)
def test_an_inherited_default_makes_the_cpu_agent_cold_with_a_notice(
    text: str, defaults: dict[str, object], source: str
) -> None:
    agent = spec(text, defaults)
    assert (agent.spec.engine, agent.spec.switch) == ("cpu", "cold")
    assert len(agent.notices) == 1
    assert source in agent.notices[0] and "agent-manager.yaml" in agent.notices[0]
    assert agent.notices[0].endswith("it switches cold.")
    assert "--enable-sleep-mode" not in serve_argv(agent)


def test_launch_engine_cpu_turns_a_sleep_agent_cold_with_a_notice() -> None:
    agent = spec(MODEL + "switch: sleep\n").with_engine("cpu")
    assert agent.spec.switch == "cold"
    assert agent.notices == (
        "po: `--engine cpu` was asked for, and vLLM's CPU engine has no sleep mode "
        '("Sleep mode is not supported on current platform"); it switches cold.',
    )
    assert spec(MODEL + "switch: sleep\n").with_engine("cuda").notices == ()


def test_a_cpu_spec_with_sleep_is_never_rendered_with_sleep_mode() -> None:
    agent = spec(MODEL + "engine: cpu\n")
    forced = type(agent)(agent.name, agent.path, agent.spec.model_copy(update={"switch": "sleep"}))
    service = render_compose(forced, "x86_64")["services"]["vllm"]
    assert "--enable-sleep-mode" not in service["command"]
    assert "VLLM_SERVER_DEV_MODE" not in service["environment"]


def test_a_stop_drains_before_docker_kills() -> None:
    service = render_compose(spec(MODEL), "x86_64")["services"]["vllm"]
    command = service["command"]
    timeout = int(command[command.index("--shutdown-timeout") + 1])
    grace = int(service["stop_grace_period"].removesuffix("s"))
    assert (timeout, grace) == (SHUTDOWN_TIMEOUT_S, STOP_GRACE_PERIOD_S)
    assert 0 < timeout < grace


def test_the_shutdown_timeout_flag_is_in_vllms_parser_dump() -> None:
    dump = resources.files("agent_manager.data").joinpath("serve-args-0.33.0.json").read_text()
    flags = {flag for entry in json.loads(dump) for flag in entry.get("flags", [])}
    assert "--shutdown-timeout" in flags


def test_the_shutdown_timeout_belongs_to_agent_manager() -> None:
    with pytest.raises(SpecError, match="--shutdown-timeout is set by"):
        spec(MODEL + "extra_args: [--shutdown-timeout, '0']\n")
