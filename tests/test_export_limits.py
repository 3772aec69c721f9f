"""What the cluster targets cannot express: each refusal names its field (exit 2), each drop
is reported; and no secret value ever reaches an exported file or the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent_manager.errors import SpecError
from agent_manager.export.kubeai import KubeAIOptions, render_model
from agent_manager.export.production_stack import StackOptions, render_values
from agent_manager.spec.agents import Agent, AgentSpec
from tests.fakes.export_targets import kubeai_problems, stack_problems


def agent(name: str = "po", **fields: object) -> Agent:
    spec = AgentSpec.model_validate({"model": "Qwen/Qwen2.5-7B-Instruct", "port": 8002, **fields})
    return Agent(name, Path(f"agents/{name}.yaml"), spec)


def local_agent(model: str) -> Agent:
    spec = AgentSpec.model_validate({"model": model, "port": 8002})
    return Agent("po", Path("agents/po.yaml"), spec)


def stack_entry(a: Agent, options: StackOptions | None = None) -> dict:
    return render_values([a], options or StackOptions()).values["servingEngineSpec"]["modelSpec"][0]


def test_switch_sleep_is_reported_as_dropped_by_kubeai_with_its_flag():
    model = render_model(agent(switch="sleep"), KubeAIOptions())
    assert [n.line() for n in model.notices] == [
        "po: 'switch': sleep has no equivalent here; dropped (KubeAI scales the Model to zero "
        "after scaleDownDelaySeconds instead)."
    ]
    assert "--enable-sleep-mode" not in model.manifest["spec"]["args"]


def test_switch_sleep_is_reported_as_dropped_by_production_stack():
    stack = render_values([agent(switch="sleep", prefix_caching=True)], StackOptions())
    assert [n.field for n in stack.notices] == ["switch"]
    assert "the chart keeps each engine running" in stack.notices[0].text


def test_vllm_dev_mode_is_never_exported():
    a = agent(env={"VLLM_SERVER_DEV_MODE": "1", "VLLM_LOGGING_LEVEL": "INFO"}, prefix_caching=True)
    model = render_model(a, KubeAIOptions())
    assert model.manifest["spec"]["env"] == {"VLLM_LOGGING_LEVEL": "INFO"}
    assert [n.field for n in model.notices] == ["env.VLLM_SERVER_DEV_MODE"]
    assert stack_entry(a)["env"] == [{"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}]


def test_kubernetes_variable_syntax_in_values_stays_literal():
    a = agent(env={"VLLM_LOGGING_PREFIX": "$(HOSTNAME) "}, prefix_caching=True)
    assert render_model(a, KubeAIOptions()).manifest["spec"]["env"] == {
        "VLLM_LOGGING_PREFIX": "$$(HOSTNAME) "
    }
    assert stack_entry(a)["env"] == [{"name": "VLLM_LOGGING_PREFIX", "value": "$$(HOSTNAME) "}]


def test_an_env_value_read_from_the_shell_is_refused_naming_the_variable():
    a = agent(env={"VLLM_LOGGING_LEVEL": "${LOG_LEVEL:-INFO}"})
    expected = r"agents/po.yaml: 'env.VLLM_LOGGING_LEVEL': \$\{LOG_LEVEL\} is read from your shell"
    with pytest.raises(SpecError, match=expected):
        render_model(a, KubeAIOptions())
    with pytest.raises(SpecError, match=expected):
        render_values([a], StackOptions())


def test_a_local_model_without_a_claim_is_refused_naming_the_field():
    with pytest.raises(
        SpecError, match=r"'model': /data/po-ft is a directory on this machine"
    ) as e:
        render_model(local_agent("/data/po-ft"), KubeAIOptions())
    assert e.value.hint is not None and "--model-pvc" in e.value.hint
    with pytest.raises(SpecError, match="production-stack cannot read it"):
        render_values([local_agent("/data/po-ft")], StackOptions())


def test_a_local_model_is_read_from_the_claim_the_user_fills():
    model = render_model(local_agent("/data/po-ft/"), KubeAIOptions(model_pvc="models"))
    assert model.manifest["spec"]["url"] == "pvc://models/po-ft"
    assert kubeai_problems(model.manifest) == []
    assert "copy /data/po-ft/ into the PersistentVolumeClaim 'models' as /po-ft" in (
        model.notices[0].text
    )
    entry = stack_entry(local_agent("/data/po-ft"), StackOptions(model_pvc="models"))
    assert entry["modelURL"] == "/models/po-ft"
    assert entry["extraVolumes"][0]["persistentVolumeClaim"]["claimName"] == "models"
    assert entry["extraVolumeMounts"][0]["mountPath"] == "/models"


def test_a_cpu_agent_gets_the_cpu_image_and_no_gpu():
    a = agent(engine="cpu", prefix_caching=True)
    spec = render_model(a, KubeAIOptions(resource_profile="nvidia-gpu-l4")).manifest["spec"]
    assert spec["resourceProfile"] == "cpu:1"
    assert spec["image"] == "vllm/vllm-openai-cpu:v0.33.0-x86_64"
    entry = stack_entry(a)
    assert (entry["repository"], entry["requestGPU"]) == ("vllm/vllm-openai-cpu", 0)
    assert stack_problems(render_values([a], StackOptions()).values) == []


# --------------------------------------------------------------------------- the CLI

SECRETS = {"HF_TOKEN": "hf_SeCrEtToKeN123", "PO_API_KEY": "sk-po-SeCrEt456"}


def _flat(text: str) -> str:
    """Rich wraps long messages at the terminal width."""
    return " ".join(text.split())


def _with_api_key(workspace: Path) -> None:
    po = workspace / "agents" / "po.yaml"
    po.write_text(po.read_text().replace("# api_key_env: PO_API_KEY", "api_key_env: PO_API_KEY"))


def test_no_secret_value_reaches_any_output(cli, workspace: Path, monkeypatch):
    _with_api_key(workspace)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    outputs = [
        cli("--home", str(workspace), "export", "kubeai"),
        cli("--home", str(workspace), "export", "kubeai", "--out", "-"),
        cli("--home", str(workspace), "export", "production-stack"),
        cli("--home", str(workspace), "export", "production-stack", "--out", "-"),
    ]
    assert [r.code for r in outputs] == [0, 0, 0, 0]
    written = sorted((workspace / "kubernetes").rglob("*.yaml"))
    assert [p.relative_to(workspace).as_posix() for p in written] == [
        "kubernetes/kubeai/architect.yaml",
        "kubernetes/kubeai/developer.yaml",
        "kubernetes/kubeai/po.yaml",
        "kubernetes/production-stack-values.yaml",
    ]
    seen = "".join(r.stdout + r.stderr for r in outputs) + "".join(p.read_text() for p in written)
    assert 'VLLM_API_KEY="$PO_API_KEY"' in seen  # the key is referenced ...
    for value in SECRETS.values():
        assert value not in seen  # ... and never written


def test_kubeai_to_stdout_is_one_stream_for_kubectl_apply(cli, workspace: Path):
    result = cli("--home", str(workspace), "export", "kubeai", "po", "dev", "--out", "-")
    assert result.code == 0
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["metadata"]["name"] for d in docs] == ["po", "developer"]
    assert not (workspace / "kubernetes").exists()


def test_a_cannot_express_refusal_exits_2_with_the_field(cli, workspace: Path):
    po = workspace / "agents" / "po.yaml"
    po.write_text(po.read_text().replace("env: {}", "env: {VLLM_LOGGING_LEVEL: '${LEVEL}'}"))
    result = cli("--home", str(workspace), "export", "production-stack", "po")
    assert result.code == 2
    assert "'env.VLLM_LOGGING_LEVEL': ${LEVEL} is read from your shell" in _flat(result.stderr)
    assert not (workspace / "kubernetes").exists()


def test_dropped_fields_are_warned_about_and_noted_in_the_file(cli, workspace: Path):
    po = workspace / "agents" / "po.yaml"
    po.write_text(po.read_text().replace("env: {}", "env: {VLLM_SERVER_DEV_MODE: '1'}"))
    result = cli("--home", str(workspace), "export", "kubeai", "po")
    assert result.code == 0
    assert "Warning: po: 'env.VLLM_SERVER_DEV_MODE': dropped" in _flat(result.stderr)
    text = (workspace / "kubernetes" / "kubeai" / "po.yaml").read_text()
    assert "# Note: po: 'env.VLLM_SERVER_DEV_MODE': dropped" in text
    assert "VLLM_SERVER_DEV_MODE: " not in text


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--resource-profile", "nvidia-gpu-l4:2"], "'tensor_parallel_size': the agent uses 1"),
        (["--resource-profile", "l4 gpu"], "--resource-profile 'l4 gpu' is not NAME"),
        (["--scale-down-delay", "half an hour"], "--scale-down-delay 'half an hour' is not"),
    ],
)
def test_kubeai_options_it_cannot_use_exit_2(cli, workspace: Path, option, message):
    result = cli("--home", str(workspace), "export", "kubeai", "po", *option)
    assert result.code == 2
    assert message in _flat(result.stderr)


def test_the_scale_down_delay_takes_the_routers_duration_form(cli, workspace: Path):
    cli("--home", str(workspace), "export", "kubeai", "po", "--scale-down-delay", "30m")
    manifest = yaml.safe_load((workspace / "kubernetes" / "kubeai" / "po.yaml").read_text())
    assert manifest["spec"]["scaleDownDelaySeconds"] == 1800
