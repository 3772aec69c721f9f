"""Will an agent fit? The planner's edge: it gathers the inputs and calls the pure core.

Inputs come from NVML (`observe.gpu.take_snapshot`), the host's RAM (`adapters/host.py`) and
the checkpoint (`plan.checkpoint`: the HF cache, then the hub). The arithmetic lives in
`memory.py`, the verdicts in `verdict.py`, the fixes in `fixes.py`; see docs/planner.md.
`ensure_fits` is launch's pre-flight.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent_manager.errors import GpuUnavailableError, LaunchError
from agent_manager.plan.models import AgentPlan, GpuTarget, Holder, HostTarget, PlanReport
from agent_manager.plan.sizing import fmt
from agent_manager.plan.sleepers import beside_sleepers
from agent_manager.plan.verdict import plan_agent, plan_cpu_agent
from agent_manager.spec.agents import Agent
from agent_manager.units import GIB

__all__ = [
    "ensure_fits",
    "gpu_target_from_nvml",
    "gpu_target_on_paper",
    "host_target",
    "plan_agent",
    "plan_agents",
    "plan_cpu_agent",
]

APPROXIMATE_TOTAL = (
    "the driver's reserved memory is not known (no NVML v2): CUDA's total, on which vLLM sizes "
    "its budget, is taken as NVML's; the budget may be ~0.3-0.5 GiB too high"
)


def gpu_target_on_paper(gib: float) -> GpuTarget:
    return GpuTarget(
        name=f"{gib:g} GiB GPU (on paper)",
        source="--gpu-memory",
        total_bytes=int(gib * GIB),
        free_bytes=None,
        notes=["free memory not known on paper: an idle card is assumed"],
    )


def gpu_target_from_nvml(gpu_index: int = 0) -> GpuTarget:
    """The real GPU (raises GpuUnavailableError), with who holds its memory now."""
    from agent_manager.observe.gpu import take_snapshot

    snapshot = take_snapshot()
    if gpu_index >= len(snapshot.gpus):
        raise GpuUnavailableError(f"There is no GPU {gpu_index}.")
    gpu = snapshot.gpus[gpu_index]
    holders = [
        Holder(label=p.label(), pid=p.pid, used_bytes=p.used_bytes, agent=p.agent)
        for p in snapshot.processes
        if p.gpu_index == gpu_index
    ]
    notes = list(snapshot.notes)
    if len(snapshot.gpus) > 1:
        notes.append(
            f"{len(snapshot.gpus)} GPUs found; planned against GPU {gpu_index} ({gpu.name})"
        )
    ours = [h for h in holders if h.agent]
    if ours:
        held = ", ".join(f"{h.label} {fmt(h.used_bytes or 0)}" for h in ours)
        notes.append(f"counted as free because launch stops running agents first: {held}")
    reserved = gpu.memory_reserved_bytes
    if reserved is None:
        notes.append(APPROXIMATE_TOTAL)
    return GpuTarget(
        name=gpu.name,
        source="nvml",
        total_bytes=gpu.memory_total_bytes - (reserved or 0),
        device_total_bytes=gpu.memory_total_bytes,
        total_exact=reserved is not None,
        free_bytes=gpu.memory_free_bytes,
        holders=holders,
        notes=notes,
    )


def host_target() -> HostTarget:
    """The host's RAM now, as vLLM's CPU worker reads it (psutil's total and available)."""
    from agent_manager.adapters.host import memory_bytes

    total, available = memory_bytes()
    return HostTarget(
        total_bytes=total,
        available_bytes=available,
        notes=["CPU agents are planned against host RAM (psutil available/total)"],
    )


def plan_agents(
    agents: list[Agent],
    target: GpuTarget | None,
    host: HostTarget | None = None,
    sleepers: Mapping[str, int] | None = None,
) -> PlanReport:
    """Plan each agent on its engine: the GPU `target` for cuda, host RAM for cpu.

    `sleepers` (agent → VRAM it keeps asleep) stay on the card beside each GPU agent planned.
    """
    from agent_manager.plan.lookup import read_checkpoints

    checkpoints = read_checkpoints((a.spec.model, a.spec.revision) for a in agents)
    plans: list[AgentPlan] = []
    for agent in agents:
        facts = checkpoints[(agent.spec.model, agent.spec.revision)]
        if agent.spec.engine == "cpu":
            host = host or host_target()
            plans.append(plan_cpu_agent(agent, facts, host))
        elif target is None:
            raise GpuUnavailableError(f"{agent.name} runs on a GPU, but no GPU was given to plan.")
        else:
            others = {name: kept for name, kept in (sleepers or {}).items() if name != agent.name}
            plans.append(plan_agent(agent, facts, beside_sleepers(target, others)))
    return PlanReport(gpu=target, host=host, agents=plans)


def ensure_fits(
    agent: Agent, *, force: bool = False, sleepers: Mapping[str, int] | None = None
) -> list[str]:
    """Raise an AgentManagerError explaining why `agent` cannot fit (unless `force`).

    `sleepers` (agent → VRAM it keeps asleep) stay on the card beside a GPU agent.
    Returns warnings to show (e.g. "NVML unavailable: fit not checked").
    """
    if agent.spec.engine == "cpu":
        report = plan_agents([agent], None, host_target())
        where = "host RAM"
    else:
        try:
            target = gpu_target_from_nvml()
        except GpuUnavailableError as error:
            return [f"NVML unavailable: fit not checked ({error.message})"]
        report = plan_agents([agent], target, sleepers=sleepers)
        where = target.name
    plan = report.agents[0]
    if plan.verdict == "unknown":
        return [f"fit of {agent.name} not checked: " + "; ".join(plan.unknowns)]
    if plan.verdict == "fits":
        return [f"{agent.name}: {note}" for note in plan.notes]
    reason = "; ".join(plan.reasons)
    if force:
        return [f"{agent.name} does not fit {where}: {reason}. Launching anyway (--force)."]
    raise LaunchError(
        f"{agent.name} does not fit {where}: {reason}.",
        hint=f"Run `agent-manager plan {agent.name}` for the arithmetic, change "
        f"{agent.path}, or launch anyway with --force.",
        details=[f"fix: {fix}" for fix in plan.fixes],
    )
