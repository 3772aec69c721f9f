"""`engine: auto`: the CUDA engine where Docker can run it on an NVIDIA GPU, else the CPU engine
with the CPU model and context the spec names (its `cpu:` block).

Pure apart from one probe of the machine (NVML and Docker's runtimes), made once per process
through `machine_engines()` and replaceable (`set_machine_probe`): tests never probe the host.
`launch`, `compose`, `compose --check`, `list` and `plan` all resolve through here, so what
`compose --check` compares is what `launch` runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from agent_manager.spec.agents import Agent, Engine


@dataclass(frozen=True)
class MachineEngines:
    """Whether this machine can run the CUDA image, and in words why not."""

    cuda: bool
    why_not: str = ""  # "no NVIDIA GPU (NVML: ...)", "Docker has no NVIDIA runtime"


def resolve_engine(
    agent: Agent, machine: Callable[[], MachineEngines], forced: Engine | None = None
) -> Agent:
    """The agent on the engine it will really run on (`--engine`, else the spec, else auto)."""
    if forced is not None:
        return agent.with_engine(forced)
    if agent.spec.engine != "auto":
        return agent.with_engine(agent.spec.engine)
    found = machine()
    if found.cuda:
        return agent.with_engine("cuda")
    chosen = agent.with_engine("cpu", "engine: auto found no NVIDIA GPU runtime")
    context = chosen.spec.max_context
    at = f" at {context:,} tokens" if isinstance(context, int) else ""
    note = (
        f"{found.why_not}: {agent.name} runs on the CPU engine with {chosen.spec.model}{at} "
        "(engine: auto; --engine cuda forces the GPU)."
    )
    return replace(chosen, engine_note=note)


ENGINE_ENV = "AGENT_MANAGER_ENGINE"


def _real_probe() -> MachineEngines:
    """AGENT_MANAGER_ENGINE=cuda|cpu answers without probing (CI, a machine NVML misreads)."""
    chosen = os.environ.get(ENGINE_ENV, "").strip().lower()
    if chosen in ("cuda", "cpu"):
        return MachineEngines(chosen == "cuda", f"{ENGINE_ENV}={chosen}")
    from agent_manager.adapters.gpu_runtime import probe_cuda_runtime

    cuda, why_not = probe_cuda_runtime()
    return MachineEngines(cuda, why_not)


_probe: Callable[[], MachineEngines] = _real_probe
_found: MachineEngines | None = None


def machine_engines() -> MachineEngines:
    """What this machine runs, probed once per process."""
    global _found
    if _found is None:
        _found = _probe()
    return _found


def set_machine_probe(probe: Callable[[], MachineEngines] | None) -> None:
    """Replace the probe (tests); None restores the real one. Forgets the last answer."""
    global _probe, _found
    _probe = probe or _real_probe
    _found = None


def gpu_cluster() -> MachineEngines:
    """Where exported agents run (KubeAI, production-stack): `auto` means the GPU there."""
    return MachineEngines(cuda=True)
