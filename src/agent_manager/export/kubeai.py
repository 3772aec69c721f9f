"""An agent → a KubeAI `Model` (apiVersion kubeai.org/v1), as data and as YAML text.

KubeAI starts vLLM with `--model` and `--served-model-name=<metadata.name>` and leaves the port
at vLLM's default, 8000; every other flag comes from the same argv as the compose file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent_manager.errors import UsageError
from agent_manager.export import limits
from agent_manager.export.argv import agent_flags, flatten, k8s_literal
from agent_manager.export.limits import Notice
from agent_manager.export.pod_size import PodMemory, bound_cores
from agent_manager.export.secrets import SecretRef, api_key_secret, hf_token_secret
from agent_manager.export.yaml_text import commented
from agent_manager.spec.agents import Agent
from agent_manager.spec.vllm_args import VLLM_VERSION

TARGET = "KubeAI"
TARGET_MARK = "kubeai"  # the `agent-manager export kubeai` its files' header names
# What KubeAI passes itself (`--model=`, `--served-model-name=`) or leaves at vLLM's default.
SET_BY_KUBEAI = frozenset({"model", "served_model_name", "port"})
# KubeAI's CRD: `size(self.metadata.name) <= 40`.
MAX_NAME = 40
# KubeAI's own defaults (CRD): how long a Model idles before it scales down, and the average
# number of in-flight requests per pod it aims for.
DEFAULT_SCALE_DOWN_DELAY_S = 30
DEFAULT_TARGET_REQUESTS = 100
DEFAULT_PROFILE = "nvidia-gpu-l4"
CPU_PROFILE = "cpu"
# KubeAI's stock `cpu` profile (its chart's values.yaml): 1 CPU and 2 Gi requested per unit.
CPU_PROFILE_UNIT_GIB = 2
DEFAULT_MAX_REPLICAS = 1
# The Secret KubeAI's controller reads its own HF token from (`secrets.huggingface`).
KUBEAI_HF_SECRET = "kubeai-huggingface"
_PROFILE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?::([0-9]+))?$")


@dataclass(frozen=True)
class KubeAIOptions:
    namespace: str | None = None
    resource_profile: str = DEFAULT_PROFILE  # NAME or NAME:COUNT
    min_replicas: int = 0
    scale_down_delay_s: int = DEFAULT_SCALE_DOWN_DELAY_S
    model_pvc: str | None = None
    max_replicas: int = DEFAULT_MAX_REPLICAS
    # CPU agents' memory as the planner sizes it (agent name -> PodMemory), read by the caller.
    cpu_memory: Mapping[str, PodMemory] = field(default_factory=dict)


@dataclass(frozen=True)
class KubeAIModel:
    agent: Agent
    manifest: dict[str, Any]
    secrets: list[SecretRef]
    notices: list[Notice] = field(default_factory=list)


def resource_profile(agent: Agent, options: KubeAIOptions) -> tuple[str, list[Notice]]:
    """`NAME:COUNT`: for a GPU agent COUNT is its GPU count (a COUNT given by the user must match
    it); for a CPU agent, the count of KubeAI's `cpu` units (1 CPU, 2 Gi each) that covers the
    memory the planner gives it."""
    option = options.resource_profile
    match = _PROFILE.match(option)
    if match is None:
        raise UsageError(
            f"--resource-profile '{option}' is not NAME or NAME:COUNT.",
            hint=f"e.g. --resource-profile {DEFAULT_PROFILE} (a profile in KubeAI's values).",
        )
    if limits.gpu_count(agent) == 0:
        return _cpu_profile(agent, options.cpu_memory.get(agent.name))
    name, count = match.group(1), match.group(2)
    gpus = limits.gpu_count(agent)
    if count is not None and int(count) != gpus:
        limits.refuse(
            agent,
            "tensor_parallel_size",
            f"the agent uses {gpus} GPU(s) but --resource-profile asks for {count}.",
            hint=f"Pass --resource-profile {name} (the count follows the spec).",
        )
    return f"{name}:{gpus}", []


def _cpu_profile(agent: Agent, planned: PodMemory | None) -> tuple[str, list[Notice]]:
    bound, notices = bound_cores(agent)
    if planned is None or planned.gib is None:
        why = planned.source if planned is not None else "no checkpoint facts were given"
        return f"{CPU_PROFILE}:{bound or 1}", [
            *notices,
            Notice(
                agent.name,
                "engine",
                f"memory not planned ({why}): cpu:{bound or 1} is {bound or 1} CPU and "
                f"{CPU_PROFILE_UNIT_GIB * (bound or 1)} Gi, likely below what vLLM "
                "needs (the weights + ~2 GiB + cpu_kv_cache_gib). Define a resource profile of "
                "that size in KubeAI's values and set spec.resourceProfile to it.",
            ),
        ]
    units = max(1, math.ceil(planned.gib / CPU_PROFILE_UNIT_GIB), bound or 0)
    note = Notice(
        agent.name,
        "engine",
        f"resourceProfile cpu:{units} ({units} CPU, {units * CPU_PROFILE_UNIT_GIB} Gi) covers "
        f"the planned {planned.gib} GiB ({planned.source}), assuming KubeAI's stock cpu profile "
        "(1 CPU, 2 Gi per unit); if yours differs, resize the count.",
    )
    return f"{CPU_PROFILE}:{units}", [*notices, note]


def hf_token_notice(agent: Agent, secret: SecretRef) -> list[Notice]:
    """KubeAI's controller gives every hf:// pod an `env` HF_TOKEN from its own Secret, and an
    `env` entry beats `envFrom`: a per-agent token is shadowed whenever the cluster has one."""
    if secret.shell_var == "HF_TOKEN":
        return []
    return [
        Notice(
            agent.name,
            "env.HF_TOKEN",
            f"KubeAI sets HF_TOKEN from its own Secret ({KUBEAI_HF_SECRET}, key token) when its "
            f"values set secrets.huggingface.token, and that wins over this Model's Secret "
            f"'{secret.name}'. Leave KubeAI's token empty, or give it this token.",
        )
    ]


def render_model(agent: Agent, options: KubeAIOptions) -> KubeAIModel:
    if options.max_replicas < options.min_replicas:
        raise UsageError(
            f"--max-replicas {options.max_replicas} is below --min-replicas "
            f"{options.min_replicas}.",
            hint="KubeAI refuses such a Model; raise --max-replicas.",
        )
    served = agent.served_name
    limits.check_name(
        agent,
        served,
        "served_name",
        TARGET,
        max_len=MAX_NAME,
        dots=True,
        hint="Set served_name to such a name (it defaults to the agent name); clients ask "
        "for the model by it.",
    )
    groups = agent_flags(agent)
    groups = [g for g in groups if g.dest not in SET_BY_KUBEAI]
    groups, notices = limits.drop_sleep(
        agent, groups, "KubeAI scales the Model to zero after scaleDownDelaySeconds instead"
    )
    source, source_notes = limits.model_source(agent, options.model_pvc, TARGET)
    env, env_notes = limits.cluster_env(agent)
    notices += source_notes + env_notes
    if source.repo is not None:
        url = f"hf://{source.repo}"
    else:
        url = f"pvc://{source.pvc}/{source.subpath}"
    secrets = [hf_token_secret(agent)]
    if source.repo is not None:
        notices += hf_token_notice(agent, secrets[0])
    api_key = api_key_secret(agent)
    if api_key is not None:
        secrets.append(api_key)
    repository, tag = limits.image(agent)
    metadata: dict[str, Any] = {"name": served}
    if options.namespace:
        metadata["namespace"] = options.namespace
    metadata["labels"] = {
        "app.kubernetes.io/managed-by": "agent-manager",
        "agent-manager/agent": agent.name,
    }
    metadata["annotations"] = {"agent-manager/spec-hash": agent.spec_hash()}
    spec: dict[str, Any] = {
        "engine": "VLLM",
        "features": ["TextGeneration"],
        "url": url,
        "image": f"{repository}:{tag}",
        "args": [k8s_literal(token) for token in flatten(groups)],
    }
    if env:
        spec["env"] = env
    spec["envFrom"] = [
        # The HF token is optional: public models need none, and a missing Secret must not
        # block the pod. A missing API key Secret must: the agent would run unprotected.
        {"secretRef": {"name": s.name, "optional": True}}
        if s.key == "HF_TOKEN"
        else {"secretRef": {"name": s.name}}
        for s in secrets
    ]
    spec["resourceProfile"], profile_notes = resource_profile(agent, options)
    notices += profile_notes
    spec["minReplicas"] = options.min_replicas
    # Without it, more requests in flight than targetRequests add pods (and GPUs) unbounded.
    spec["maxReplicas"] = options.max_replicas
    spec["targetRequests"] = agent.spec.max_num_seqs or DEFAULT_TARGET_REQUESTS
    spec["scaleDownDelaySeconds"] = options.scale_down_delay_s
    manifest = {"apiVersion": "kubeai.org/v1", "kind": "Model", "metadata": metadata, "spec": spec}
    return KubeAIModel(agent, manifest, secrets, notices)


def render_model_text(model: KubeAIModel, options: KubeAIOptions) -> str:
    agent = model.agent
    lines = [
        f"KubeAI Model generated by agent-manager from agents/{agent.name}.yaml "
        f"(vLLM {VLLM_VERSION}).",
        f"Do not edit: `agent-manager export {TARGET_MARK}` rewrites this file.",
        "Secrets it reads, filled from your shell once (never written here):",
        *(f"  {s.create_command(options.namespace)}" for s in model.secrets),
        "Apply: kubectl apply -f <this file or its folder>",
        f'Clients: base_url="http://kubeai/openai/v1", model="{agent.served_name}".',
        f"HF token: KubeAI's own Secret ({KUBEAI_HF_SECRET}), when it holds a token, "
        "wins over the one above.",
        *(f"Note: {n.line()}" for n in model.notices),
        f"spec-hash: {agent.spec_hash()}",
    ]
    return commented(lines, model.manifest)
