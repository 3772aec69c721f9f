"""The hot switch: put the awake sleep-mode agent to sleep, wake the target if it sleeps.

Policy (docs/hot-switch.md):
- A → B with A `switch: sleep`: sleep A (confirmed by /is_sleeping and, where NVML works, by
  its GPU memory dropping); a `switch: cold` A is stopped as before.
- B's container exists, is current and sleeps: wake it (level 2: reload_weights, then
  reset_prefix_cache) and confirm it serves. Otherwise B is started cold beside the sleepers.
- Any sleep or wake step that fails or times out falls back to a cold stop/start, said in one
  line that keeps the reason. A is asleep or gone before B wakes or starts: never two awake.
- Sleepers stay only if B still passes vLLM's free-memory check beside them (`fit.fit_in_plan`);
  otherwise they are stopped and the line says by how much B would have been short.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters import host as host_adapter
from agent_manager.adapters import http as http_adapter
from agent_manager.adapters.docker import AgentContainer
from agent_manager.diagnosis.sleep_log import last_sleep_measure, weights_bytes_from_log
from agent_manager.errors import AgentManagerError
from agent_manager.observe import sleep_records
from agent_manager.observe.sleepers import (
    DEFAULT_RESIDUAL_BYTES,
    SleepAgent,
    residual_of,
)
from agent_manager.observe.state import AgentState
from agent_manager.plan.sleepers import choose_sleep_level, measured_residual
from agent_manager.spec.agents import Agent
from agent_manager.spec.endpoint import api_key_from
from agent_manager.spec.loader import load_agent
from agent_manager.spec.workspace import Workspace
from agent_manager.switch.context import SwitchContext
from agent_manager.switch.engine_sleep import WAKE_TIMEOUT_S, SleepFailed, put_to_sleep, wake
from agent_manager.switch.stop import STOP_GRACE_S, stop_and_remove
from agent_manager.switch.strategy import BroughtUp, PutAway, SwitchPlan, SwitchStrategy
from agent_manager.switch.vram import container_gpu_bytes, dropped
from agent_manager.units import GIB

NVML_DROP_WAIT_S = 5.0

Say = Callable[[str], None]


class HotSwitch:
    """Sleep the others that can sleep and wake a sleeping target; the rest as `cold` does."""

    def __init__(self, cold: SwitchStrategy):
        self.cold = cold

    def put_away(self, ctx: SwitchContext, plan: SwitchPlan) -> PutAway:
        plan.staying = sleep_others(ctx.ws, ctx.agent, plan, ctx.events.message)
        done = self.cold.put_away(ctx, plan)  # stops what is left: cold agents, failed sleepers
        done.asleep = sorted({c.agent for c in plan.containers if c.id in plan.staying})
        return done

    def bring_up(self, ctx: SwitchContext, plan: SwitchPlan) -> BroughtUp:
        keep, say = plan.keep, ctx.events.message
        if keep is not None and plan.machine(keep.agent).state is AgentState.ASLEEP:
            machine = plan.machine(keep.agent)
            machine.move(AgentState.STARTING)
            ctx.timings.up_issued = time.time()
            if wake_target(ctx.ws, ctx.agent, keep, say, ctx.remaining()):
                machine.move(AgentState.READY)
                ctx.timings.up_done = time.time()
                return BroughtUp(keep, woke=True)
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
    candidates = plan.sleepers(ws, agent.name)
    staying = {c.container.id for c in candidates if c.asleep}
    sleeping = [c.agent.name for c in candidates if c.asleep]
    for other in (c for c in candidates if not c.asleep):
        try:
            _sleep_one(ws, other, say, sleeping)
        except SleepFailed as failed:
            say(f"{failed.message} Stopping it instead (cold switch).")
            continue
        plan.machine(other.agent.name).move(AgentState.ASLEEP)
        staying.add(other.container.id)
        sleeping.append(other.agent.name)
    return staying


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
    before = container_gpu_bytes(container.id)
    seconds = put_to_sleep(other.url, agent.name, level)
    _confirm_drop(agent.name, container.id, before)
    try:
        kept, ram = _record_sleep(ws, other, level, weights, sleeping)
    except (AgentManagerError, OSError) as error:
        # Asleep but unrecorded, a wake would not know its level: wake it back now, and
        # the caller stops it (cold switch) rather than leave nothing awake.
        why = error.message if isinstance(error, AgentManagerError) else str(error)
        key = api_key_from(agent.spec.api_key_env)
        try:
            wake(other.url, agent.name, agent.served_name, level, key, WAKE_TIMEOUT_S[level])
            back = "woke it back"
        except SleepFailed:
            back = "waking it back failed too"
        raise SleepFailed(f"{agent.name} fell asleep, but {why} ({back}).") from None
    say(
        f"Put {agent.name} to sleep (level {level}) in {seconds:.2f} s; it keeps "
        f"{kept / GIB:.1f} GiB of GPU memory{ram}."
    )


def _record_sleep(
    ws: Workspace, other: SleepAgent, level: int, weights: int | None, sleeping: list[str]
) -> tuple[int, str]:
    """Write what vLLM says the sleep freed; (bytes kept on the GPU, host-RAM clause)."""
    container, agent = other.container, other.agent
    record = sleep_records.new_record(agent.name, container.id, agent.spec_hash(), level)
    record.weights_bytes = weights
    measure = last_sleep_measure(docker_adapter.get_docker().log_lines(container.id, tail=50))
    if measure is not None:
        others = sum(residual_of(ws, load_agent(ws, name)) for name in sleeping)
        record.freed_bytes = measure.freed_bytes
        record.still_in_use_bytes = measure.still_in_use_bytes
        record.residual_bytes = measured_residual(measure.still_in_use_bytes, others)
    sleep_records.write_record(ws, record)
    kept = record.residual_bytes or DEFAULT_RESIDUAL_BYTES
    ram = f" and {record.host_ram_bytes / GIB:.1f} GiB in host RAM" if record.host_ram_bytes else ""
    return kept, ram


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


def _confirm_drop(agent: str, container_id: str, before: int | None) -> None:
    if before is None:
        return
    deadline = time.monotonic() + NVML_DROP_WAIT_S
    while True:
        now = container_gpu_bytes(container_id)
        if now is None or dropped(now, before):
            return
        if time.monotonic() > deadline:
            raise SleepFailed(
                f"{agent} says it sleeps, but its GPU memory stayed at {now / GIB:.1f} GiB "
                f"(NVML) for {NVML_DROP_WAIT_S:.0f} s."
            )
        time.sleep(0.1)
