"""The hot switch: put the awake sleep-mode agent to sleep, wake the target if it sleeps.

Policy (docs/hot-switch.md):
- A → B with A `switch: sleep`: sleep A (confirmed by /is_sleeping and, where NVML works, by
  its GPU memory dropping); a `switch: cold` A is stopped as before.
- B's container exists, is current and sleeps: wake it (level 2: reload_weights, then
  reset_prefix_cache) and confirm it serves. Otherwise B is started cold beside the sleepers.
- Any sleep or wake step that fails or times out falls back to a cold stop/start, said in one
  line that keeps the reason. A is asleep or gone before B wakes or starts: never two awake.
- Sleepers stay only if B still passes vLLM's free-memory check beside them (`check_fit`);
  otherwise they are stopped and the line says by how much B would have been short.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters import host as host_adapter
from agent_manager.adapters import http as http_adapter
from agent_manager.adapters import nvml as nvml_adapter
from agent_manager.adapters import vllm_dev
from agent_manager.adapters.docker import AgentContainer
from agent_manager.errors import AgentManagerError, GpuUnavailableError, LaunchError
from agent_manager.plan import planner
from agent_manager.plan.sleepers import (
    DEFAULT_RESIDUAL_BYTES,
    choose_sleep_level,
    measured_residual,
)
from agent_manager.runtime import sleep_records
from agent_manager.runtime.gpu import container_id_of
from agent_manager.runtime.sleep import (
    WAKE_TIMEOUT_S,
    SleepFailed,
    last_sleep_measure,
    put_to_sleep,
    wake,
    weights_bytes_from_log,
)
from agent_manager.runtime.state import AgentMachine, AgentState
from agent_manager.runtime.stop import STOP_GRACE_S, stop_and_remove
from agent_manager.spec.agents import Agent
from agent_manager.spec.endpoint import api_key_from
from agent_manager.spec.loader import load_agent
from agent_manager.spec.workspace import Workspace

if TYPE_CHECKING:  # the switch core imports this module; its types are only annotations here
    from agent_manager.runtime.context import SwitchContext
    from agent_manager.runtime.switch import SwitchPlan, SwitchStrategy

GIB = 1024**3
NVML_DROP_BYTES = 256 * 1024**2
NVML_DROP_WAIT_S = 5.0

Say = Callable[[str], None]


@dataclass
class SleepAgent:
    """A running container of a `switch: sleep` agent, made from its current spec."""

    container: AgentContainer
    agent: Agent
    url: str
    asleep: bool


def _load(ws: Workspace, name: str) -> Agent:
    """load_agent, parsed once per file version: a switch looks at each spec several times."""
    path = ws.spec_path(name)
    try:
        stat = path.stat()
    except OSError:
        return load_agent(ws, name)  # says the file is missing
    return _load_cached(ws, name, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _load_cached(ws: Workspace, name: str, mtime_ns: int, size: int) -> Agent:
    return load_agent(ws, name)


def sleep_agents(ws: Workspace, containers: list[AgentContainer]) -> list[SleepAgent]:
    """Running containers that can sleep (spec says sleep, container made from that spec)."""
    found = []
    for container in containers:
        if not container.running or container.port is None:
            continue
        try:
            agent = _load(ws, container.agent)
        except AgentManagerError:
            continue  # spec gone or broken: it is stopped, not slept
        if agent.spec.switch != "sleep" or container.spec_hash != agent.spec_hash():
            continue
        url = http_adapter.base_url(agent.spec.bind, container.port)
        try:
            asleep = vllm_dev.is_sleeping(url, timeout=2.0)
        except vllm_dev.DevApiError:
            continue  # still starting, or not in sleep mode: stopped as before
        found.append(SleepAgent(container, agent, url, asleep))
    return found


def residual_of(ws: Workspace, agent: Agent) -> int:
    """VRAM the agent keeps asleep: measured for this spec once seen, else the default."""
    record = sleep_records.read_record(ws, agent.name)
    if record and record.spec_hash == agent.spec_hash() and record.residual_bytes:
        return record.residual_bytes
    return DEFAULT_RESIDUAL_BYTES


def check_fit(ws: Workspace, agent: Agent, cold: bool, force: bool) -> tuple[list[str], bool]:
    """The planner's verdict with the sleepers left on the card: (warnings, keep sleepers)."""
    if cold:
        return planner.ensure_fits(agent, force=force), False
    found = sleep_agents(ws, docker_adapter.get_docker().list_agent_containers())
    others = [s for s in found if s.agent.name != agent.name]
    if any(s.agent.name == agent.name and s.asleep for s in found):
        # A wake re-maps what the sleep freed; vLLM does no start check then.
        return [], True
    if not others:
        return planner.ensure_fits(agent, force=force), True
    residuals = {s.agent.name: residual_of(ws, s.agent) for s in others}
    try:
        return planner.ensure_fits(agent, sleepers=residuals), True
    except LaunchError as refusal:
        names = ", ".join(sorted(residuals))
        line = (
            f"{agent.name} would not fit beside sleeping {names} ({refusal.message}); "
            "stopping them instead (cold switch)."
        )
        return [line, *planner.ensure_fits(agent, force=force)], False


class HotSwitch:
    """Sleep the others that can sleep and wake a sleeping target; the rest as `cold` does."""

    def __init__(self, cold: SwitchStrategy):
        self.cold = cold

    def put_away(self, ctx: SwitchContext, plan: SwitchPlan) -> None:
        plan.staying = sleep_others(ctx.ws, ctx.agent, plan, ctx.events.message)
        ctx.progress.asleep = sorted({c.agent for c in plan.containers if c.id in plan.staying})
        self.cold.put_away(ctx, plan)  # stops what is left: cold agents, failed sleepers

    def bring_up(self, ctx: SwitchContext, plan: SwitchPlan) -> AgentContainer:
        keep, say = plan.keep, ctx.events.message
        if keep is not None and plan.machine(keep.agent).state is AgentState.SLEEPING:
            machine = plan.machine(keep.agent)
            machine.move(AgentState.STARTING)
            ctx.timings.up_issued = time.time()
            if wake_target(ctx.ws, ctx.agent, keep, say, ctx.remaining()):
                machine.move(AgentState.READY)
                ctx.timings.up_done = time.time()
                ctx.progress.container, ctx.progress.woke = keep.name, True
                return keep
            machine.move(AgentState.STOPPING)
            stop_and_remove(keep, grace_s=STOP_GRACE_S, on_progress=say)
            machine.move(AgentState.STOPPED)
            plan.keep = None
        return self.cold.bring_up(ctx, plan)


def sleep_others(ws: Workspace, agent: Agent, plan: SwitchPlan, say: Say) -> set[str]:
    """Put every other ready sleep agent to sleep; the ids of the containers left asleep.

    States come from the plan's probe. One that fails to sleep, or is not ready to, is left
    out: the cold part stops it.
    """
    candidates: list[SleepAgent] = []
    for container in plan.containers:
        machine: AgentMachine | None = plan.machines.get(container.agent)
        if container.agent == agent.name or machine is None or container.port is None:
            continue
        if machine.state not in (AgentState.SLEEPING, AgentState.READY) or not container.running:
            continue
        try:
            found = _load(ws, container.agent)
        except AgentManagerError:
            continue
        if found.spec.switch != "sleep" or container.spec_hash != found.spec_hash():
            continue
        url = http_adapter.base_url(found.spec.bind, container.port)
        asleep = machine.state is AgentState.SLEEPING
        candidates.append(SleepAgent(container, found, url, asleep))
    staying = {c.container.id for c in candidates if c.asleep}
    sleeping = [c.agent.name for c in candidates if c.asleep]
    for other in (c for c in candidates if not c.asleep):
        try:
            _sleep_one(ws, other, say, sleeping)
        except SleepFailed as failed:
            say(f"{failed.message} Stopping it instead (cold switch).")
            continue
        plan.machine(other.agent.name).move(AgentState.SLEEPING)
        staying.add(other.container.id)
        sleeping.append(other.agent.name)
    return staying


def sleep_idle(ws: Workspace, name: str, say: Say) -> bool:
    """Put the awake sleep agent `name` to sleep (`serve`'s idle timeout); False when it is
    not one that can sleep now (the caller stops it instead)."""
    containers = docker_adapter.get_docker().list_agent_containers()
    candidates = [c for c in sleep_agents(ws, containers) if c.agent.name == name]
    if not candidates:
        return False
    if candidates[0].asleep:
        return True
    others = [c.agent.name for c in sleep_agents(ws, containers) if c.asleep]
    try:
        _sleep_one(ws, candidates[0], say, others)
    except SleepFailed as failed:
        say(f"{failed.message} Stopping it instead.")
        return False
    return True


def _sleep_one(ws: Workspace, other: SleepAgent, say: Say, sleeping: list[str]) -> None:
    """Sleep one agent, confirmed, and record what vLLM says it freed and still uses;
    `sleeping` are the agents already asleep on the card (their share of vLLM's Y)."""
    container, agent = other.container, other.agent
    previous = sleep_records.read_record(ws, agent.name)
    weights = previous.weights_bytes if previous and previous.container_id == container.id else None
    if weights is None:
        weights = weights_bytes_from_log(docker_adapter.get_docker().log_lines(container.id))
    level, why = choose_sleep_level(
        agent.name, agent.spec.sleep_level, weights, host_adapter.available_memory_bytes()
    )
    if why:
        say(why)
    before = _gpu_bytes_of(container.id)
    seconds = put_to_sleep(other.url, agent.name, level)
    _confirm_drop(agent.name, container.id, before)
    record = sleep_records.new_record(agent.name, container.id, agent.spec_hash(), level)
    record.weights_bytes = weights
    measure = last_sleep_measure(docker_adapter.get_docker().log_lines(container.id, tail=50))
    if measure is not None:
        others = sum(residual_of(ws, _load(ws, name)) for name in sleeping)
        record.freed_bytes = measure.freed_bytes
        record.still_in_use_bytes = measure.still_in_use_bytes
        record.residual_bytes = measured_residual(measure.still_in_use_bytes, others)
    sleep_records.write_record(ws, record)
    kept = record.residual_bytes or DEFAULT_RESIDUAL_BYTES
    ram = f" and {record.host_ram_bytes / GIB:.1f} GiB in host RAM" if record.host_ram_bytes else ""
    say(
        f"Put {agent.name} to sleep (level {level}) in {seconds:.2f} s; it keeps "
        f"{kept / GIB:.1f} GiB of GPU memory{ram}."
    )


def wake_target(
    ws: Workspace, agent: Agent, container: AgentContainer, say: Say, within: float
) -> bool:
    """Wake `agent`'s sleeping container and confirm it serves; False (said why) if not.

    On failure the caller stops the container and starts it cold.
    """
    if container.port is None:
        return False
    url = http_adapter.base_url(agent.spec.bind, container.port)
    record = sleep_records.asleep_record(ws, agent.name, container.id)
    level = record.level if record else agent.spec.sleep_level
    key = api_key_from(agent.spec.api_key_env)
    timeout = max(1.0, min(within, WAKE_TIMEOUT_S[level]))
    try:
        seconds = wake(url, agent.name, agent.served_name, level, key, timeout)
    except SleepFailed as failed:
        say(f"{failed.message} Restarting it cold.")
        return False
    sleep_records.mark_awake(ws, agent.name)
    say(f"Woke {agent.name} (level {level}) in {seconds:.2f} s.")
    return True


def _gpu_bytes_of(container_id: str) -> int | None:
    """GPU memory the container's processes hold now (NVML); None where NVML cannot tell."""
    try:
        processes = nvml_adapter.get_nvml().processes()
    except GpuUnavailableError:
        return None
    held = [p.used_bytes or 0 for p in processes if container_id_of(p.pid) == container_id]
    return sum(held) if held else None


def _confirm_drop(agent: str, container_id: str, before: int | None) -> None:
    if before is None:
        return
    deadline = time.monotonic() + NVML_DROP_WAIT_S
    while True:
        now = _gpu_bytes_of(container_id)
        if now is None or now <= before - NVML_DROP_BYTES:
            return
        if time.monotonic() > deadline:
            raise SleepFailed(
                f"{agent} says it sleeps, but its GPU memory stayed at {now / GIB:.1f} GiB "
                f"(NVML) for {NVML_DROP_WAIT_S:.0f} s."
            )
        time.sleep(0.1)
