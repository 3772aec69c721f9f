"""Agents → a Helm values file for vllm-project/production-stack (chart `vllm-stack`).

The chart runs `vllm serve <modelURL> --host 0.0.0.0 --port 8000`, then flags built from
`vllmConfig`, then `vllmConfig.extraArgs`, then `--revision <modelRevision>`. Each flag of the
agent's argv goes to the chart field that emits it, and every other flag to extraArgs, so the
engine gets the compose file's argv. The router finds each engine's model names through its
/v1/models, so `--served-model-name` stays in extraArgs and clients keep `model: <agent>`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent_manager.export import limits
from agent_manager.export.argv import FlagGroup, agent_flags, k8s_literal
from agent_manager.export.limits import MODEL_MOUNT, Notice
from agent_manager.export.pod_size import SHM_GIB, PodMemory, bound_cores
from agent_manager.export.secrets import SecretRef, api_key_secret, hf_token_secret
from agent_manager.export.yaml_text import commented
from agent_manager.spec.agents import Agent
from agent_manager.spec.vllm_args import CONTAINER_PORT, VLLM_VERSION

TARGET = "production-stack"
# The chart version the values are checked against (tests render it with real `helm template`).
CHART_VERSION = "0.1.12"
# What the chart passes itself: the model (from modelURL), --host and --port.
SET_BY_CHART = frozenset({"model", "port", "host"})
# Flags the chart emits from a vllmConfig field; the value must fit the schema's type.
VLLM_CONFIG_FIELDS = {
    "max_model_len": "maxModelLen",
    "max_num_seqs": "maxNumSeqs",
    "tensor_parallel_size": "tensorParallelSize",
    "gpu_memory_utilization": "gpuMemoryUtilization",
    "dtype": "dtype",
}
ON_OFF_FIELDS = {
    "enable_prefix_caching": "enablePrefixCaching",
    "enable_chunked_prefill": "enableChunkedPrefill",
}
INT_FIELDS = frozenset({"maxModelLen", "maxNumSeqs", "tensorParallelSize"})
HELM_EXACT_INT_LIMIT = 1_000_000
# The chart's resource requests are required; these match KubeAI's L4 profile.
DEFAULT_REQUEST_CPU = 6
DEFAULT_REQUEST_MEMORY = "24Gi"
MAX_NAME = 40  # `<release>-<name>-engine-service` must stay within 63 characters
# The chart's own startup probe allows 15 s + 60 x 10 s (~615 s): a big model on a slow link,
# or a CPU agent compiling, is killed before it is ready and then downloads again. KubeAI gives
# 3 h (its vLLM pod: 5400 x 2 s); so do we by default (`--startup-timeout`).
DEFAULT_STARTUP_TIMEOUT_S = 3 * 3600
PROBE_DELAY_S = 15
PROBE_PERIOD_S = 10


@dataclass(frozen=True)
class StackOptions:
    request_cpu: int = DEFAULT_REQUEST_CPU
    request_memory: str = DEFAULT_REQUEST_MEMORY
    model_pvc: str | None = None
    # CPU agents' memory as the planner sizes it (agent name -> PodMemory), read by the caller.
    cpu_memory: Mapping[str, PodMemory] = field(default_factory=dict)
    startup_timeout_s: int = DEFAULT_STARTUP_TIMEOUT_S
    pvc_storage: str | None = None  # a PVC of this size per engine for the HF cache (HF_HOME)


@dataclass(frozen=True)
class StackValues:
    agents: list[Agent]
    values: dict[str, Any]
    secrets: list[SecretRef]
    notices: list[Notice] = field(default_factory=list)


def vllm_config(agent: Agent, groups: list[FlagGroup]) -> tuple[dict[str, Any], list[Notice]]:
    """Split flags into the chart's vllmConfig fields and extraArgs (everything else)."""
    config: dict[str, Any] = {}
    extra: list[str] = []
    for group in groups:
        key = VLLM_CONFIG_FIELDS.get(group.dest)
        on_off = ON_OFF_FIELDS.get(group.dest)
        if on_off is not None:
            config[on_off] = group.name.startswith("--enable-")
        elif key is not None and _fits(key, group.values):
            config[key] = _typed(key, group.values[0])
        else:
            extra += group.tokens
    notices = []
    if "enablePrefixCaching" not in config:
        # The chart always passes --enable-prefix-caching or --no-enable-prefix-caching.
        config["enablePrefixCaching"] = True
        notices.append(
            Notice(
                agent.name,
                "prefix_caching",
                "unset, but the chart always sets it: exported as on (vLLM's default for "
                "decoder LLMs); set it in the spec to choose.",
            )
        )
    if extra:
        config["extraArgs"] = [k8s_literal(token) for token in extra]
    return config, notices


def _fits(key: str, values: tuple[str, ...]) -> bool:
    if len(values) != 1:
        return False
    if key in INT_FIELDS:
        # Helm reads YAML numbers as floats, and `quote` prints 1e+06 from 1000000 on: vLLM
        # would refuse `--max-model-len 1.048576e+06`. Such values go to extraArgs as text.
        return values[0].isdigit() and int(values[0]) < HELM_EXACT_INT_LIMIT
    return True


def _typed(key: str, value: str) -> int | float | str:
    if key in INT_FIELDS:
        return int(value)
    if key == "gpuMemoryUtilization":
        number = float(value)
        return int(number) if number.is_integer() else number
    return value


def model_spec(
    agent: Agent, options: StackOptions
) -> tuple[dict[str, Any], list[SecretRef], list[Notice]]:
    limits.check_name(
        agent,
        agent.name,
        "agent name",
        TARGET,
        max_len=MAX_NAME,
        dots=False,
        hint=f"Rename {agent.path} (production-stack names the Deployment and Service after "
        "the agent); clients keep asking for served_name.",
    )
    groups = agent_flags(agent)
    revision = [g for g in groups if g.dest == "revision"]
    groups = [g for g in groups if g.dest not in SET_BY_CHART and g.dest != "revision"]
    groups, notices = limits.drop_sleep(
        agent, groups, "the chart keeps each engine running; its router sleeps one only when asked"
    )
    source, source_notes = limits.model_source(agent, options.model_pvc, TARGET)
    env, env_notes = limits.cluster_env(agent)
    config, config_notes = vllm_config(agent, groups)
    notices += source_notes + env_notes + config_notes
    repository, tag = limits.image(agent)
    hf_token = hf_token_secret(agent)
    entry: dict[str, Any] = {
        "name": agent.name,
        "repository": repository,
        "tag": tag,
        "modelURL": source.repo or f"{MODEL_MOUNT}/{source.subpath}",
        "replicaCount": 1,
    }
    resources, resource_notes = _resources(agent, options)
    entry |= resources
    notices += resource_notes
    if options.pvc_storage is not None:
        entry["pvcStorage"] = options.pvc_storage
    if revision:
        entry["modelRevision"] = revision[0].values[0]
    if limits.engine(agent) == "cpu":
        # The chart mounts its /dev/shm Memory volume only when tensorParallelSize is set;
        # without it the CPU engine gets 64 MiB and exits ("Insufficient space in /dev/shm").
        config.setdefault("tensorParallelSize", 1)
        entry["shmSize"] = f"{SHM_GIB}Gi"
    entry["vllmConfig"] = config
    entry["hf_token"] = {"secretName": hf_token.name, "secretKey": hf_token.key}
    secrets = [hf_token]
    api_key = api_key_secret(agent)
    if api_key is not None:
        entry["envFromSecret"] = {"name": api_key.name}
        secrets.append(api_key)
    if env:
        entry["env"] = [{"name": key, "value": value} for key, value in env.items()]
    if source.pvc is not None:
        entry["extraVolumes"] = [
            {"name": "model", "persistentVolumeClaim": {"claimName": source.pvc, "readOnly": True}}
        ]
        entry["extraVolumeMounts"] = [{"name": "model", "mountPath": MODEL_MOUNT, "readOnly": True}]
    return entry, secrets, notices


def _resources(agent: Agent, options: StackOptions) -> tuple[dict[str, Any], list[Notice]]:
    """GPU agents: the options' CPU and memory requests and one GPU per tensor-parallel rank.
    CPU agents: the planner's memory as request and limit, whole CPUs as request and limit
    (the cores an explicit VLLM_CPU_OMP_THREADS_BIND names, else --request-cpu)
    (a Guaranteed pod, so a static CPU manager can give vLLM's OpenMP threads their own cores),
    no GPU, and no runtime class (the chart's default, `nvidia`, is refused on CPU nodes)."""
    if limits.engine(agent) != "cpu":
        return {
            "requestCPU": options.request_cpu,
            "requestMemory": options.request_memory,
            "requestGPU": limits.gpu_count(agent),
        }, []
    planned = options.cpu_memory.get(agent.name)
    bound, notices = bound_cores(agent)
    cpus = bound or options.request_cpu
    memory = planned.quantity if planned is not None else None
    if memory is None:
        why = planned.source if planned is not None else "no checkpoint facts were given"
        memory = options.request_memory
        notices.append(
            Notice(
                agent.name,
                "engine",
                f"memory not planned ({why}); the pod gets --request-memory {memory}: it needs "
                "the weights + ~2 GiB + cpu_kv_cache_gib, raise it if the pod is OOM-killed.",
            )
        )
    return {
        "requestCPU": cpus,
        "limitCPU": cpus,
        "requestMemory": memory,
        "limitMemory": memory,
        "requestGPU": 0,
        "runtimeClassName": "",
    }, notices


def startup_probe(timeout_s: int) -> dict[str, Any]:
    """The engines' startup probe: /health every 10 s for `timeout_s` after a 15 s delay."""
    return {
        "initialDelaySeconds": PROBE_DELAY_S,
        "periodSeconds": PROBE_PERIOD_S,
        "failureThreshold": max(1, math.ceil(timeout_s / PROBE_PERIOD_S)),
        "httpGet": {"path": "/health", "port": CONTAINER_PORT},
    }


def render_values(agents: list[Agent], options: StackOptions) -> StackValues:
    entries: list[dict[str, Any]] = []
    secrets: list[SecretRef] = []
    notices: list[Notice] = []
    for agent in agents:
        entry, agent_secrets, agent_notices = model_spec(agent, options)
        entries.append(entry)
        secrets += [s for s in agent_secrets if s not in secrets]
        notices += agent_notices
    router: dict[str, Any] = {"enableRouter": True, "routingLogic": "roundrobin"}
    router_key = _router_api_key(agents)
    if router_key is not None:
        router["vllmApiKey"] = {"secretName": router_key.name, "secretKey": router_key.key}
    values = {
        "servingEngineSpec": {
            "enableEngine": True,
            "startupProbe": startup_probe(options.startup_timeout_s),
            "modelSpec": entries,
        },
        "routerSpec": router,
    }
    return StackValues(agents, values, secrets, notices)


def _router_api_key(agents: list[Agent]) -> SecretRef | None:
    """The router lists every engine's models with ONE key (routerSpec.vllmApiKey); agents
    whose keys come from different variables cannot share a release."""
    first: tuple[Agent, SecretRef] | None = None
    for agent in agents:
        key = api_key_secret(agent)
        if key is None:
            continue
        if first is None:
            first = (agent, key)
        elif key.shell_var != first[1].shell_var:
            limits.refuse(
                agent,
                "api_key_env",
                f"{key.shell_var} differs from {first[0].name}'s {first[1].shell_var}, and "
                "production-stack's router reaches every engine with one key.",
                hint="Use the same api_key_env for these agents, or export them into separate "
                "releases (`agent-manager export production-stack AGENT --out FILE`).",
            )
    return first[1] if first else None


def render_values_text(stack: StackValues) -> str:
    names = ", ".join(agent.name for agent in stack.agents)
    served = ", ".join(agent.served_name for agent in stack.agents)
    lines = [
        f"vLLM production-stack values generated by agent-manager from agents/: {names} "
        f"(vLLM {VLLM_VERSION}).",
        f"Do not edit: `agent-manager export {TARGET}` rewrites this file.",
        "Secrets it reads, filled from your shell once (never written here):",
        *(f"  {s.create_command()}" for s in stack.secrets),
        "Install: helm repo add vllm https://vllm-project.github.io/production-stack",
        f"         helm install agents vllm/vllm-stack --version {CHART_VERSION} -f <this file>",
        f'Clients: base_url="http://agents-router-service/v1"; models: {served}.',
        *(f"Note: {n.line()}" for n in stack.notices),
    ]
    return commented(lines, stack.values)
