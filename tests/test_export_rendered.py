"""What the clusters would actually run: the production-stack Deployment rendered by real
`helm template` on the vendored chart, and the Pod KubeAI's controller builds from the Model
(its mapping rules vendored in tests/fakes/kubeai_pod.py). Argv, the whole environment and the
resources are compared with the compose file, per engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_manager.compose.render import render_compose
from agent_manager.export.kubeai import KubeAIOptions, render_model, render_model_text
from agent_manager.export.pod_size import PodMemory, pod_memory
from agent_manager.export.production_stack import StackOptions, render_values, render_values_text
from agent_manager.plan.cpu_budget import cpu_budget
from agent_manager.plan.models import CheckpointFacts, Weights
from agent_manager.plan.shape import shape_from_config
from agent_manager.spec.agents import Agent, AgentSpec, parse_spec
from tests.fakes.export_targets import (
    GOLDEN,
    check_golden,
    default_agents,
    full_agent,
    kubeai_problems,
    stack_problems,
)
from tests.fakes.helm import engine_deployment, helm_template
from tests.fakes.kubeai_pod import pod_for_model

CONFIGS = Path(__file__).parent / "fixtures" / "configs"
GIB = 1024**3
# Compose-only or secret variables: launch's offline switch, and secrets (by Secret instead).
NOT_IN_POD = {"HF_TOKEN", "HF_HUB_OFFLINE", "VLLM_API_KEY", "VLLM_SERVER_DEV_MODE"}
# What the chart and KubeAI add themselves.
CHART_ENV = {"PYTHONHASHSEED", "HF_HOME", "POD_IP", "PROMETHEUS_MULTIPROC_DIR", "HF_TOKEN"}


def cpu_agent(**fields: object) -> Agent:
    spec = AgentSpec.model_validate(
        {
            "engine": "cpu",
            "model": "Qwen/Qwen2.5-7B-Instruct-AWQ",
            "port": 8004,
            "max_context": 8192,
            "cpu_kv_cache_gib": 4,
            "api_key_env": "CPU_API_KEY",
            "env": {"VLLM_LOGGING_LEVEL": "INFO"},
            **fields,
        }
    )
    return Agent("cpu", Path("agents/cpu.yaml"), spec)


def facts(weights_gib: float = 5.2) -> CheckpointFacts:
    config = json.loads((CONFIGS / "Qwen2.5-7B-Instruct-AWQ.json").read_text())
    return CheckpointFacts(
        shape=shape_from_config(config),
        config_source="test",
        weights=Weights(bytes=int(weights_gib * GIB), source="test"),
    )


def cpu_pod_memory(agent: Agent, checkpoint: CheckpointFacts) -> PodMemory:
    """As `export` sizes the pod: the planner's CPU budget, then the export's rounding."""
    return pod_memory(*cpu_budget(agent, checkpoint))


CPU = cpu_agent()
PLANNED = cpu_pod_memory(CPU, facts())
# The golden CPU spec: a local model folder (so a claim), its own thread binding "0-3".
LOCAL_CPU = parse_spec("localcpu", Path("agents/localcpu.yaml"), (GOLDEN / "cpu.yaml").read_text())
LOCAL_PLANNED = cpu_pod_memory(LOCAL_CPU, facts(weights_gib=0.92))
AGENTS = [*default_agents(), full_agent(), CPU, LOCAL_CPU]
MEMORY = {"cpu": PLANNED, "localcpu": LOCAL_PLANNED}
STACK = StackOptions(cpu_memory=MEMORY, model_pvc="models")
KUBEAI = KubeAIOptions(cpu_memory=MEMORY, model_pvc="models")


@pytest.mark.parametrize("agent", [CPU, LOCAL_CPU], ids=lambda a: a.name)
def test_a_cpu_agents_exports_match_their_golden_files(agent: Agent):
    check_golden(
        render_model_text(render_model(agent, KUBEAI), KUBEAI),
        GOLDEN / "export" / "kubeai" / f"{agent.name}.yaml",
    )
    check_golden(
        render_values_text(render_values([agent], STACK)),
        GOLDEN / "export" / f"{agent.name}.production-stack-values.yaml",
    )


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_every_export_is_valid_against_the_targets_schemas(agent: Agent):
    assert kubeai_problems(render_model(agent, KUBEAI).manifest) == []
    assert stack_problems(render_values([agent], STACK).values) == []


def test_an_explicit_thread_binding_sizes_the_cpus_and_is_warned_about():
    entry = render_values([LOCAL_CPU], STACK).values["servingEngineSpec"]["modelSpec"][0]
    assert (entry["requestCPU"], entry["limitCPU"]) == (4, 4)  # "0-3"
    notices = render_values([LOCAL_CPU], STACK).notices
    (notice,) = [n for n in notices if n.field == "env.VLLM_CPU_OMP_THREADS_BIND"]
    assert "names cores of this machine" in notice.text
    kubeai = render_model(LOCAL_CPU, KUBEAI).manifest["spec"]["resourceProfile"]
    assert int(kubeai.split(":")[1]) >= 4


def compose_env(agent: Agent) -> dict[str, str]:
    """The container's environment under Compose (`$$` is Compose's escape for `$`)."""
    env = render_compose(agent, machine="x86_64")["services"]["vllm"]["environment"]
    return {k: v.replace("$$", "$") for k, v in env.items() if k not in NOT_IN_POD}


def pod_env(container: dict[str, Any]) -> dict[str, str]:
    """Plain values as the kubelet hands them over (`$$(` is Kubernetes' escape for `$(`)."""
    return {
        e["name"]: e["value"].replace("$$(", "$(")
        for e in container["env"]
        if "value" in e and e["name"] not in CHART_ENV
    }


def compose_argv(agent: Agent) -> list[str]:
    return render_compose(agent, machine="x86_64")["services"]["vllm"]["command"]


# --- production-stack, rendered by helm -------------------------------------------------------


def deployment(agent: Agent) -> dict[str, Any]:
    objects = helm_template(render_values([agent], STACK).values)
    return engine_deployment(objects, agent.name)


def container_of(obj: dict[str, Any]) -> dict[str, Any]:
    (vllm,) = [c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm"]
    return vllm


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
@pytest.mark.helm
def test_the_chart_gives_each_engine_the_compose_files_environment(agent: Agent):
    vllm = container_of(deployment(agent))
    assert pod_env(vllm) == compose_env(agent)
    token = next(e for e in vllm["env"] if e["name"] == "HF_TOKEN")
    assert "secretKeyRef" in token["valueFrom"]
    if agent.spec.api_key_env:
        assert {"secretRef": {"name": agent.spec.api_key_env.lower().replace("_", "-")}} in vllm[
            "envFrom"
        ]


@pytest.mark.helm
def test_a_cpu_engine_keeps_its_kv_space_and_thread_binding_under_the_chart():
    env = {e["name"]: e.get("value") for e in container_of(deployment(CPU))["env"]}
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "4"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "auto"


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
@pytest.mark.helm
def test_the_chart_runs_the_compose_files_argv(agent: Agent):
    command = container_of(deployment(agent))["command"]
    # A local folder is read from the claim (mounted at /models/<folder>), not the host path.
    model = f"/models/{Path(agent.spec.model).name}" if agent.spec.local_model else None
    assert command[:3] == ["vllm", "serve", model or compose_argv(agent)[0]]
    rest = command[3:]
    # The chart's own --host/--port (8000, as compose), and its spellings of the same flags.
    assert rest[:4] == ["--host", "0.0.0.0", "--port", "8000"]
    canon = [t.replace("--no-enable-", "--disable-") for t in rest[4:]]
    expected = _without(compose_argv(agent)[1:], {"--port"})
    if agent.spec.engine == "cpu":
        expected += ["--tensor-parallel-size", "1"]  # vLLM's default, set to get the shm volume
    if agent.spec.prefix_caching is None:
        expected.append("--enable-prefix-caching")  # the chart always passes one (a Notice)
    assert sorted(_pairs(canon)) == sorted(_pairs(expected))


def _pairs(argv: list[str]) -> list[tuple[str, ...]]:
    from agent_manager.export.argv import flag_groups

    return [(g.name.replace("_", "-"), *g.values) for g in flag_groups(argv)]


@pytest.mark.helm
def test_a_cpu_engine_starts_on_a_cpu_node_with_shm_and_its_planned_memory():
    pod = deployment(CPU)["spec"]["template"]["spec"]
    vllm = container_of(deployment(CPU))
    assert "runtimeClassName" not in pod  # the chart's default would be `nvidia`
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "shm", "mountPath": "/dev/shm"} in vllm["volumeMounts"]
    memory = f"{PLANNED.gib}Gi"
    assert vllm["resources"]["requests"] == {"memory": memory, "cpu": "6"}
    assert vllm["resources"]["limits"] == {"memory": memory, "cpu": "6"}


def test_the_planned_memory_holds_weights_runtime_kv_and_shm():
    assert PLANNED.gib is not None
    # 5.2 GiB weights + 1.5 GiB runtime + activations + 4 GiB KV, rounded up, + 1 GiB shm.
    assert 11 <= PLANNED.gib <= 13
    assert PLANNED.gib * GIB >= 5.2 * GIB + 1.5 * GIB + 4 * GIB + 1 * GIB


@pytest.mark.helm
def test_a_gpu_engine_keeps_its_gpu_and_runtime_class():
    architect = default_agents()[0]
    pod = deployment(architect)["spec"]["template"]["spec"]
    vllm = container_of(deployment(architect))
    assert pod["runtimeClassName"] == "nvidia"
    assert vllm["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert vllm["resources"]["limits"] == {"nvidia.com/gpu": "1"}


@pytest.mark.helm
def test_the_startup_probe_waits_as_long_as_the_option_says():
    probe = container_of(deployment(CPU))["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 3 * 3600
    short = StackOptions(cpu_memory={"cpu": PLANNED}, startup_timeout_s=1800)
    objects = helm_template(render_values([CPU], short).values)
    probe = container_of(engine_deployment(objects, "cpu"))["startupProbe"]
    assert (probe["periodSeconds"], probe["failureThreshold"]) == (10, 180)


@pytest.mark.helm
def test_pvc_storage_gives_each_engine_a_claim_for_the_hf_cache():
    options = StackOptions(cpu_memory={"cpu": PLANNED}, pvc_storage="50Gi")
    objects = helm_template(render_values([CPU], options).values)
    claim = next(o for o in objects if o["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    vllm = container_of(engine_deployment(objects, "cpu"))
    assert {"name": "HF_HOME", "value": "/data"} in vllm["env"]


def test_an_unplanned_cpu_agent_gets_the_memory_option_and_a_notice():
    stack = render_values([CPU], StackOptions(cpu_memory={"cpu": PodMemory(None, "hub down")}))
    entry = stack.values["servingEngineSpec"]["modelSpec"][0]
    assert (entry["requestMemory"], entry["limitMemory"]) == ("24Gi", "24Gi")
    (notice,) = [n for n in stack.notices if n.field == "engine"]
    assert "memory not planned (hub down)" in notice.text


# --- KubeAI: the Pod its controller builds ------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_kubeais_pod_gets_the_compose_files_environment(agent: Agent):
    pod = pod_for_model(render_model(agent, KUBEAI).manifest)
    (server,) = pod["spec"]["containers"]
    assert pod_env(server) == compose_env(agent)


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_kubeais_pod_runs_the_compose_files_argv(agent: Agent):
    manifest = render_model(agent, KUBEAI).manifest
    (server,) = pod_for_model(manifest)["spec"]["containers"]
    argv = compose_argv(agent)
    model = "/model" if manifest["spec"]["url"].startswith("pvc://") else argv[0]
    expected = [f"--model={model}", f"--served-model-name={manifest['metadata']['name']}"]
    kept = _without(argv[1:], {"--served-model-name", "--port"})  # KubeAI's, and 8000 as ours
    assert sorted(_pairs(server["args"])) == sorted(_pairs(expected + kept))


def _without(argv: list[str], flags: set[str]) -> list[str]:
    from agent_manager.export.argv import flag_groups, flatten

    return flatten([g for g in flag_groups(argv) if g.name not in flags])


def test_kubeais_pod_for_a_cpu_agent_holds_its_planned_memory():
    model = render_model(CPU, KUBEAI)
    (server,) = pod_for_model(model.manifest)["spec"]["containers"]
    memory = int(server["resources"]["requests"]["memory"].removesuffix("Gi"))
    assert PLANNED.gib is not None and memory >= PLANNED.gib
    assert memory - PLANNED.gib < 2  # the smallest count of 2 Gi units that covers it
    assert model.manifest["spec"]["resourceProfile"] == f"cpu:{memory // 2}"
    assert server["image"] == "vllm/vllm-openai-cpu:v0.33.0-x86_64"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in server["volumeMounts"]
    probe = server["startupProbe"]
    assert probe["failureThreshold"] * probe["periodSeconds"] == 3 * 3600  # KubeAI's own 3 h
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert (env["VLLM_CPU_KVCACHE_SPACE"], env["VLLM_CPU_OMP_THREADS_BIND"]) == ("4", "auto")
    assert any("resourceProfile cpu:" in n.text for n in model.notices)


def test_kubeai_without_a_plan_says_the_profile_must_be_defined():
    model = render_model(CPU, KubeAIOptions())
    assert model.manifest["spec"]["resourceProfile"] == "cpu:1"
    (notice,) = [n for n in model.notices if n.field == "engine"]
    assert "Define a resource profile" in notice.text


def test_kubeai_replicas_are_bounded_by_default():
    spec = render_model(default_agents()[0], KubeAIOptions()).manifest["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (0, 1)
    spec = render_model(default_agents()[0], KubeAIOptions(max_replicas=3)).manifest["spec"]
    assert spec["maxReplicas"] == 3


def test_kubeais_own_hf_token_shadowing_an_agents_token_is_said():
    model = render_model(full_agent(), KubeAIOptions())
    (server,) = pod_for_model(model.manifest)["spec"]["containers"]
    # KubeAI's `env` HF_TOKEN comes after, and beats, the Model's envFrom Secret.
    assert server["env"][-1]["name"] == "HF_TOKEN"
    assert {"secretRef": {"name": "architect-hf-token", "optional": True}} in server["envFrom"]
    (notice,) = [n for n in model.notices if n.field == "env.HF_TOKEN"]
    assert "kubeai-huggingface" in notice.text and "architect-hf-token" in notice.text
    plain = render_model(default_agents()[0], KubeAIOptions())
    assert not [n for n in plain.notices if n.field == "env.HF_TOKEN"]


def test_the_vendored_kubeai_rules_are_the_ones_the_pod_builder_follows():
    """If the vendored controller source changes, tests/fakes/kubeai_pod.py must follow."""
    from tests.fakes.kubeai_pod import SOURCES

    vllm = (SOURCES / "engine_vllm.go").read_text()
    for line in (
        '"--served-model-name=" + m.Name',
        'Command:         []string{"python3", "-m", "vllm.entrypoints.openai.api_server"}',
        "FailureThreshold: 5400",
        'MountPath: "/dev/shm"',
        "args = append(args, m.Spec.Args...)",
    ):
        assert line in vllm, line
    source = (SOURCES / "model_source.go").read_text()
    assert 'Name: "HF_TOKEN"' in source and 'MountPath: "/model"' in source
    controller = (SOURCES / "model_controller.go").read_text()
    assert "q.Mul(int64(multiple))" in controller
