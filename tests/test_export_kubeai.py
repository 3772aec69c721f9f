"""KubeAI Models: valid against KubeAI's own CRD, golden output, the compose file's flags."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent_manager.compose.render import render_compose
from agent_manager.errors import SpecError
from agent_manager.export.argv import flag_groups
from agent_manager.export.kubeai import KubeAIOptions, render_model, render_model_text
from agent_manager.spec.agents import Agent, parse_spec
from agent_manager.spec.vllm_args import CONTAINER_PORT
from tests.fakes.export_targets import (
    GOLDEN,
    check_golden,
    default_agents,
    full_agent,
    kubeai_problems,
)

OPTIONS = KubeAIOptions()
ALL = [*default_agents(), full_agent()]


@pytest.mark.parametrize("agent", ALL, ids=lambda a: a.name)
def test_the_model_matches_its_golden_file(agent: Agent):
    text = render_model_text(render_model(agent, OPTIONS), OPTIONS)
    check_golden(text, GOLDEN / "export" / "kubeai" / f"{agent.name}.yaml")


@pytest.mark.parametrize("agent", ALL, ids=lambda a: a.name)
def test_every_model_is_valid_against_kubeais_crd(agent: Agent):
    text = render_model_text(render_model(agent, OPTIONS), OPTIONS)
    manifest = yaml.safe_load(text)
    assert manifest["apiVersion"] == "kubeai.org/v1"
    assert manifest["kind"] == "Model"
    assert kubeai_problems(manifest) == []


def test_the_schema_check_catches_what_kubeai_would_refuse():
    manifest = render_model(default_agents()[0], OPTIONS).manifest
    broken = {**manifest, "spec": {**manifest["spec"], "engine": "vllm", "minReplicas": -1}}
    broken["metadata"] = {"name": "x" * 41}
    assert len(kubeai_problems(broken)) == 3


@pytest.mark.parametrize("agent", ALL, ids=lambda a: a.name)
def test_the_model_runs_the_compose_files_flags(agent: Agent):
    """KubeAI passes --model and --served-model-name itself and leaves --port at 8000."""
    spec = render_model(agent, OPTIONS).manifest
    compose_argv = render_compose(agent)["services"]["vllm"]["command"]
    kubeai_argv = [
        f"--model={spec['spec']['url'].removeprefix('hf://')}",
        f"--served-model-name={spec['metadata']['name']}",
        "--port",
        str(CONTAINER_PORT),
        *spec["spec"]["args"],
    ]
    as_run = {g.dest: g.values for g in flag_groups(kubeai_argv)}
    compose = {g.dest: g.values for g in flag_groups(["--model", *compose_argv])}
    assert as_run == compose


def test_names_url_replicas_and_profile_follow_the_spec_and_options():
    agent = full_agent()
    options = KubeAIOptions(
        namespace="agents",
        resource_profile="nvidia-gpu-h100",
        min_replicas=1,
        scale_down_delay_s=1800,
    )
    manifest = render_model(agent, options).manifest
    assert manifest["metadata"]["name"] == "architect-14b"
    assert manifest["metadata"]["namespace"] == "agents"
    spec = manifest["spec"]
    assert spec["url"] == "hf://Qwen/Qwen2.5-14B-Instruct-AWQ"
    # KubeAI's hf:// URL has no revision; vLLM gets the pin as a flag.
    assert spec["args"][:2] == ["--revision", "0123456789abcdef0123456789abcdef01234567"]
    assert spec["image"] == "vllm/vllm-openai:v0.33.0-cu130"
    assert spec["resourceProfile"] == "nvidia-gpu-h100:1"
    assert (spec["minReplicas"], spec["scaleDownDelaySeconds"]) == (1, 1800)
    assert spec["targetRequests"] == 2  # max_num_seqs
    assert spec["env"] == {"VLLM_LOGGING_LEVEL": "DEBUG"}


def test_tokens_and_keys_come_from_secrets_named_after_the_shell_variables():
    model = render_model(full_agent(), KubeAIOptions(namespace="agents"))
    assert model.manifest["spec"]["envFrom"] == [
        {"secretRef": {"name": "architect-hf-token", "optional": True}},
        {"secretRef": {"name": "architect-api-key"}},
    ]
    assert [s.create_command("agents") for s in model.secrets] == [
        "kubectl create secret generic architect-hf-token -n agents "
        '--from-literal=HF_TOKEN="$ARCHITECT_HF_TOKEN"',
        "kubectl create secret generic architect-api-key -n agents "
        '--from-literal=VLLM_API_KEY="$ARCHITECT_API_KEY"',
    ]
    assert "HF_TOKEN" not in model.manifest["spec"]["env"]


def test_a_served_name_kubernetes_cannot_use_is_refused_naming_the_field():
    agent = parse_spec(
        "po",
        Path("agents/po.yaml"),
        "model: Qwen/Qwen2.5-7B-Instruct\nport: 8002\nserved_name: Po_Agent\n",
    )
    with pytest.raises(SpecError, match=r"agents/po.yaml: 'served_name': KubeAI names .*Po_Agent"):
        render_model(agent, OPTIONS)


def test_a_resource_profile_count_that_is_not_the_gpu_count_is_refused():
    with pytest.raises(SpecError, match="'tensor_parallel_size': the agent uses 1 GPU"):
        render_model(default_agents()[0], KubeAIOptions(resource_profile="nvidia-gpu-l4:2"))
