"""Before a switch touches Docker: what the agent needs from this machine (its API key
variable, its local model folder, an engine this machine can run)."""

from __future__ import annotations

import os
from pathlib import Path

from agent_manager.errors import GpuUnavailableError, LaunchError, SpecError
from agent_manager.spec.agents import Agent
from agent_manager.spec.engine_choice import machine_engines


def require_engine_runs_here(agent: Agent) -> None:
    """A CUDA agent on a machine that cannot run the CUDA image stops here, before Compose
    pulls a multi-GB image it could never start."""
    if agent.spec.engine == "cpu":
        return
    found = machine_engines()
    if not found.cuda:
        raise GpuUnavailableError(
            f"{found.why_not}, so {agent.name} cannot run on the CUDA engine; nothing was "
            "pulled or started.",
            hint=f"Run it on the CPU: `agent-manager launch {agent.name} --engine cpu` (the "
            "spec's cpu: block picks the model), or set engine: auto in its spec.",
        )


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
