"""production-stack values: valid against the chart's own schema, golden output, and the chart
builds the compose file's argv from them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent_manager.compose.render import render_compose
from agent_manager.errors import SpecError
from agent_manager.export.argv import flag_groups
from agent_manager.export.production_stack import StackOptions, render_values, render_values_text
from agent_manager.spec.agents import Agent, parse_spec
from tests.fakes.export_targets import (
    GOLDEN,
    chart_argv,
    check_golden,
    default_agents,
    full_agent,
    stack_problems,
)

OPTIONS = StackOptions()
ALL = [*default_agents(), full_agent()]


def agent_from(text: str, name: str = "po") -> Agent:
    return parse_spec(name, Path(f"agents/{name}.yaml"), text)


def test_the_default_agents_values_match_the_golden_file():
    text = render_values_text(render_values(default_agents(), OPTIONS))
    check_golden(text, GOLDEN / "export" / "production-stack-values.yaml")


def test_every_spec_field_renders_as_the_golden_file_says():
    text = render_values_text(render_values([full_agent()], OPTIONS))
    check_golden(text, GOLDEN / "export" / "full.production-stack-values.yaml")


@pytest.mark.parametrize("agents", [default_agents(), [full_agent()]], ids=["defaults", "full"])
def test_the_values_are_valid_against_the_charts_schema(agents: list[Agent]):
    values = yaml.safe_load(render_values_text(render_values(agents, OPTIONS)))
    assert stack_problems(values) == []
    assert values["routerSpec"]["enableRouter"] is True


def test_the_schema_check_catches_what_helm_would_refuse():
    values = render_values(default_agents(), OPTIONS).values
    entry = values["servingEngineSpec"]["modelSpec"][0]
    entry["vllmConfig"]["maxModelLen"] = "8k"
    entry["requestCPU"] = "six"
    assert len(stack_problems(values)) == 2


def _canonical(argv: list[str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    # The chart writes --no-enable-X (BooleanOptionalAction) where our argv has --disable-X,
    # and --gpu_memory_utilization where ours has dashes: vLLM reads them the same.
    argv = [t.replace("--no-enable-", "--disable-") for t in argv]
    return {
        g.dest: (g.name.replace("_", "-"), g.values)
        for g in flag_groups(argv)
        if g.dest != "host"  # the chart's own --host 0.0.0.0 (vLLM's default: every address)
    }


@pytest.mark.parametrize("agent", ALL, ids=lambda a: a.name)
def test_the_chart_runs_the_compose_files_argv(agent: Agent):
    entry = render_values([agent], OPTIONS).values["servingEngineSpec"]["modelSpec"][0]
    compose_argv = render_compose(agent)["services"]["vllm"]["command"]
    from_chart = chart_argv(entry)
    assert from_chart[0] == compose_argv[0]  # the model, positional
    assert _canonical(from_chart[1:]) == _canonical(compose_argv[1:])


def test_flags_go_to_the_chart_fields_that_emit_them_and_the_rest_to_extra_args():
    entry = render_values([full_agent()], OPTIONS).values["servingEngineSpec"]["modelSpec"][0]
    assert entry["modelRevision"] == "0123456789abcdef0123456789abcdef01234567"
    config = entry["vllmConfig"]
    assert config["gpuMemoryUtilization"] == 0.85
    assert config["enablePrefixCaching"] is False
    assert "maxModelLen" not in config  # 'auto' is not the integer the chart's field takes
    assert config["extraArgs"][:4] == [
        "--served-model-name",
        "architect-14b",
        "--max-model-len",
        "auto",
    ]
    assert (entry["repository"], entry["tag"], entry["requestGPU"]) == (
        "vllm/vllm-openai",
        "v0.33.0-cu130",
        1,
    )


def test_tokens_and_keys_are_secret_references_and_the_router_gets_the_key():
    values = render_values([full_agent()], OPTIONS).values
    entry = values["servingEngineSpec"]["modelSpec"][0]
    assert entry["hf_token"] == {"secretName": "architect-hf-token", "secretKey": "HF_TOKEN"}
    assert entry["envFromSecret"] == {"name": "architect-api-key"}
    assert entry["env"] == [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}]
    assert values["routerSpec"]["vllmApiKey"] == {
        "secretName": "architect-api-key",
        "secretKey": "VLLM_API_KEY",
    }


def test_agents_with_keys_from_different_variables_are_refused_naming_the_field():
    one = agent_from("model: Qwen/Qwen2.5-7B-Instruct\nport: 8002\napi_key_env: PO_KEY\n")
    two = agent_from("model: Qwen/Qwen2.5-7B-Instruct\nport: 8003\napi_key_env: DEV_KEY\n", "dev2")
    with pytest.raises(SpecError, match=r"agents/dev2.yaml: 'api_key_env': DEV_KEY differs"):
        render_values([one, two], OPTIONS)


def test_an_agent_name_kubernetes_cannot_use_is_refused():
    agent = agent_from("model: Qwen/Qwen2.5-7B-Instruct\nport: 8002\n", "my_po")
    with pytest.raises(SpecError, match=r"agents/my_po.yaml: 'agent name': production-stack"):
        render_values([agent], OPTIONS)


def test_an_unset_prefix_caching_is_reported_as_set_by_the_chart():
    agent = agent_from("model: Qwen/Qwen2.5-7B-Instruct\nport: 8002\n")
    stack = render_values([agent], OPTIONS)
    assert [n.line() for n in stack.notices] == [
        "po: 'prefix_caching': unset, but the chart always sets it: exported as on (vLLM's "
        "default for decoder LLMs); set it in the spec to choose."
    ]
    assert "# Note: po: 'prefix_caching': unset" in render_values_text(stack)


def test_a_million_token_context_stays_text_so_helm_does_not_print_it_as_1e06():
    agent = agent_from(
        "model: Qwen/Qwen2.5-7B-Instruct-1M\nport: 8002\nmax_context: 1010000\n"
        "prefix_caching: true\n"
    )
    config = render_values([agent], OPTIONS).values["servingEngineSpec"]["modelSpec"][0][
        "vllmConfig"
    ]
    assert "maxModelLen" not in config
    assert config["extraArgs"][2:4] == ["--max-model-len", "1010000"]
