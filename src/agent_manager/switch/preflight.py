"""Before a switch touches Docker: what the agent needs from this machine (its API key
variable, its local model folder) and a hint when a GPU agent meets a machine without a GPU."""

from __future__ import annotations

import os
from pathlib import Path

from agent_manager.adapters import nvml as nvml_adapter
from agent_manager.errors import GpuUnavailableError, LaunchError, SpecError
from agent_manager.spec.agents import Agent


def no_gpu_hint(agent: Agent) -> str | None:
    """One line on how to use the CPU when a GPU agent meets a machine without NVIDIA GPU."""
    if agent.spec.engine != "cuda":
        return None
    try:
        nvml_adapter.get_nvml().devices()
    except GpuUnavailableError as error:
        return (
            f"No NVIDIA GPU here ({error.message.rstrip('.')}). To run {agent.name} on the "
            f"CPU: agent-manager launch {agent.name} --engine cpu"
        )
    return None


def require_local_model(agent: Agent) -> None:
    """A local model folder must exist: Docker would refuse the mount with a cryptic line."""
    if agent.spec.local_model and not Path(agent.spec.model).is_dir():
        raise SpecError(
            f"{agent.path}: 'model': the folder {agent.spec.model} does not exist on this machine.",
            hint="Give the absolute path of a folder holding config.json, the tokenizer and the "
            "*.safetensors weights (what `save_pretrained` writes).",
        )


def require_api_key(agent: Agent) -> None:
    """A spec that asks for an API key must get one: compose would pass an empty
    VLLM_API_KEY, and vLLM would then serve everyone without a key."""
    variable = agent.spec.api_key_env
    if variable and not os.environ.get(variable):
        raise LaunchError(
            f"{agent.name} asks for an API key in ${variable} ({agent.path}: api_key_env), "
            f"but {variable} is not set.",
            hint=f"export {variable}=<a secret key> and launch again (clients send the same "
            "key), or remove api_key_env from the spec to serve without one.",
        )
