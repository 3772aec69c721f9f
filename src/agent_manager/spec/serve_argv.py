"""The argv after `vllm serve` for an agent, and the image it runs (pure).

The flags come from the spec; `vllm_args.py` knows which flags vLLM accepts.
"""

from __future__ import annotations

import json
from typing import Any

from agent_manager.spec.agents import Agent, AgentSpec
from agent_manager.spec.serving import serving_argv
from agent_manager.spec.vllm_args import (
    CONTAINER_PORT,
    CPU_IMAGE,
    IMAGE,
    IMAGE_TAG,
    MODEL_MOUNT,
    SHUTDOWN_TIMEOUT_S,
    cpu_arch,
)


def image_ref(spec: AgentSpec, machine: str) -> str:
    """The image an agent runs: vllm/vllm-openai:<tag>, or the CPU image for this machine."""
    tag = spec.image_tag or IMAGE_TAG
    if spec.engine == "cpu":
        return f"{CPU_IMAGE}:{tag}-{cpu_arch(machine)}"
    return f"{IMAGE}:{tag}"


def model_argument(agent: Agent) -> str:
    """What vLLM is told to load: the repo id, or where the local folder is mounted."""
    if agent.spec.local_model:
        return f"{MODEL_MOUNT}/{agent.name}"
    return agent.spec.model


def sleeps(spec: AgentSpec) -> bool:
    """Sleep mode is rendered for the GPU engine only: vLLM's CPU engine has none."""
    return spec.switch == "sleep" and spec.engine != "cpu"  # auto: the GPU until resolved


def serve_argv(agent: Agent) -> list[str]:
    """The argv after `vllm serve` (the image's entrypoint): the model first, then flags."""
    spec = agent.spec
    argv = [model_argument(agent), "--served-model-name", agent.served_name]
    argv += ["--port", str(CONTAINER_PORT)]
    if spec.revision:
        argv += ["--revision", spec.revision]
    if spec.max_context is not None:
        argv += ["--max-model-len", str(spec.max_context)]
    if spec.engine != "cpu":
        # On the CPU engine this flag would be a fraction of RAM; cpu_kv_cache_gib sizes it.
        argv += ["--gpu-memory-utilization", _number(spec.gpu_memory_fraction)]
    if spec.max_num_seqs is not None:
        argv += ["--max-num-seqs", str(spec.max_num_seqs)]
    if spec.kv_cache_dtype != "auto":
        argv += ["--kv-cache-dtype", spec.kv_cache_dtype]
    if spec.dtype != "auto":
        argv += ["--dtype", spec.dtype]
    if spec.quantization:
        argv += ["--quantization", spec.quantization]
    if spec.tensor_parallel_size != 1:
        argv += ["--tensor-parallel-size", str(spec.tensor_parallel_size)]
    if spec.prefix_caching is not None:
        on_off = "enable" if spec.prefix_caching else "disable"
        argv.append(f"--{on_off}-prefix-caching")
    if spec.enforce_eager:
        argv.append("--enforce-eager")
    if spec.trust_remote_code:
        argv.append("--trust-remote-code")
    if sleeps(spec):
        argv.append("--enable-sleep-mode")
    # vLLM 0.33 aborts in-flight requests on SIGTERM unless given time (default 0): drain,
    # and end before the compose stop_grace_period sends SIGKILL.
    argv += ["--shutdown-timeout", str(SHUTDOWN_TIMEOUT_S)]
    overrides = spec.generation_overrides()
    if overrides:
        argv += ["--override-generation-config", _json(overrides)]
    if spec.speculative:
        argv += ["--speculative-config", _json(spec.speculative)]
    argv += serving_argv(spec.tool_parser, spec.reasoning_parser, spec.task)
    return argv + list(spec.extra_args)


def _number(value: float) -> str:
    return repr(float(value)).removesuffix(".0") if float(value).is_integer() else repr(value)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
