"""The hot switch: put the awake sleep-mode agent to sleep, wake the target if it sleeps.

Policy (docs/hot-switch.md):
- A → B with A `switch: sleep`: sleep A (confirmed by /is_sleeping and, where NVML works, by
  its GPU memory dropping); a `switch: cold` A is stopped as before.
- B's container exists, is current and sleeps: wake it in vLLM's order (level 2: weights,
  reload_weights, then the KV cache; engine_sleep.py) and confirm it serves; after level 2 the
  greedy probe recorded before the sleep must match. Otherwise B starts cold beside them.
- Every sleep drains first (`mode=wait`, bounded like the router's drain).
- Any sleep or wake step that fails or times out falls back to a cold stop/start, said in one
  line that keeps the reason. A is asleep or gone before B wakes or starts: never two awake.
- Sleepers stay only if B still passes vLLM's free-memory check beside them (`fit.fit_in_plan`);
  otherwise they are stopped and the line says by how much B would have been short. Once a
  sleeper's residual is measured larger than the plan assumed, the fit is checked again.
- A wake that runs out of GPU memory stops the other sleepers before the cold start
  (memory_retry.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters import host as host_adapter
from agent_manager.adapters import http as http_adapter
from agent_manager.adapters.docker import AgentContainer
from agent_manager.diagnosis.sleep_log import (
    backed_up_bytes,
    last_sleep_measure,
    weights_bytes_from_log,
)
from agent_manager.errors import AgentManagerError, LaunchError
from agent_manager.observe import sleep_records
from agent_manager.observe.gpu import container_rss_bytes
from agent_manager.observe.sleepers import (
    DEFAULT_RESIDUAL_BYTES,
    SleepAgent,
    residual_of,
    sleep_agents,
)
from agent_manager.observe.state import AgentState
from agent_manager.plan import planner
from agent_manager.plan.host_ram import estimate_backup_bytes, measured_host_ram, tensor_blocks
from agent_manager.plan.sleepers import MIN_RESIDUAL_BYTES, choose_sleep_level, measured_residual
from agent_manager.spec.agents import Agent
from agent_manager.spec.endpoint import api_key_from
from agent_manager.spec.loader import load_agent
from agent_manager.spec.workspace import Workspace
from agent_manager.switch.context import SwitchContext
from agent_manager.switch.engine_sleep import (
    WAKE_TIMEOUT_S,
    SleepFailed,
    greedy_probe,
    put_to_sleep,
    wake,
)
from agent_manager.switch.memory_retry import is_memory_failure, sleepers_left, stop_sleepers
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
        assumed = _residuals_now(ctx.ws, plan, ctx.agent.name)
        plan.staying = sleep_others(ctx.ws, ctx.agent, plan, ctx.events.message)
        recheck_fit(ctx, plan, assumed)
        done = self.cold.put_away(ctx, plan)  # stops what is left: cold agents, failed sleepers
        done.asleep = sorted({c.agent for c in plan.containers if c.id in plan.staying})
        return done

    def bring_up(self, ctx: SwitchContext, plan: SwitchPlan) -> BroughtUp:
        keep, say = plan.keep, ctx.events.message
        if keep is not None and plan.machine(keep.agent).state is AgentState.ASLEEP:
            machine = plan.machine(keep.agent)
            machine.move(AgentState.STARTING)
            ctx.timings.up_issued = time.time()
            failed = wake_target(ctx.ws, ctx.agent, keep, say, ctx.events.warning, ctx.remaining())
            if failed is None:
                machine.move(AgentState.READY)
                ctx.timings.up_done = time.time()
                return BroughtUp(keep, woke=True)
            machine.move(AgentState.STOPPING)
            stop_and_remove(keep, grace_s=STOP_GRACE_S, on_progress=say)
            machine.move(AgentState.STOPPED)
            plan.keep = None
            if is_memory_failure(LaunchError(failed)):
                stop_sleepers(ctx, plan, f"{ctx.agent.name}'s wake ran out of GPU memory")
        return self.cold.bring_up(ctx, plan)


def _residuals_now(ws: Workspace, plan: SwitchPlan, target: str) -> dict[str, int]:
    """What the fit check counted for each sleeper, before this switch sleeps any."""
    return {s.agent.name: residual_of(ws, s.agent) for s in plan.sleepers(ws, target)}


def recheck_fit(ctx: SwitchContext, plan: SwitchPlan, assumed: dict[str, int]) -> None:
    """The fit was checked with the residuals known then (the default before a first sleep):
    once a sleeper's real one is measured and is larger, check again; stop them if it no
    longer fits."""
    ws, staying = ctx.ws, sleepers_left(plan)
    now = {c.agent: residual_of(ws, load_agent(ws, c.agent)) for c in staying}
    if ctx.options.force or not any(now[name] > assumed.get(name, 0) for name in now):
        return
    try:
        planner.ensure_fits(ctx.agent, sleepers=now)
    except LaunchError as refusal:
        ctx.events.warning(
            f"{ctx.agent.name} would not fit beside the measured sleepers ({refusal.message}); "
            "stopping them instead (cold switch)."
        )
        plan.staying = set()


def sleep_others(ws: Workspace, agent: Agent, plan: SwitchPlan, say: Say) -> set[str]:
    """Put every other ready sleep agent to sleep; the ids of the containers left asleep.

    States come from the plan's probe. One that fails to sleep, or is not ready to, is left
    out: the cold part stops it.
    """
    candidates = plan.sleepers(ws, agent.name)
    for name, why in plan.cannot_sleep(ws, agent.name):
        say(f"{name} cannot sleep now ({why}); stopping it instead (cold switch).")
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
    """Sleep one agent, confirmed, and record what it keeps: its GPU memory (NVML, its own
    processes), the host RAM of a level-1 sleep, the probe a level-2 wake is checked with.
    `sleeping` are the agents already asleep on the card (their share of vLLM's Y)."""
    container, agent = other.container, other.agent
    previous = sleep_records.read_record(ws, agent.name)
    same = previous if previous and previous.container_id == container.id else None
    weights = same.weights_bytes if same else None
    if weights is None:
        weights = weights_bytes_from_log(docker_adapter.get_docker().log_lines(container.id))
    host_ram = _host_ram_before(agent, weights, same)
    level, why = choose_sleep_level(
        agent.name, agent.spec.sleep_level, host_ram, host_adapter.available_memory_bytes()
    )
    if why:
        say(why)
    key = api_key_from(agent.spec.api_key_env)
    probe = same.probe if same and same.probe else None
    if level == 2 and probe is None:
        probe = greedy_probe(other.url, agent.served_name, key)
    before = container_gpu_bytes(container.id)
    # The RSS growth is read on the container's first level-1 sleep only: later ones reuse
    # PyTorch's cached pinned blocks (and a /proc walk costs ~10 ms a time).
    first = level == 1 and not (same and same.host_ram_measured)
    rss_before = container_rss_bytes(container.id) if first else None
    seconds = put_to_sleep(other.url, agent.name, level, say)
    after = _confirm_drop(agent.name, container.id, before)
    try:
        record = sleep_records.new_record(agent.name, container.id, agent.spec_hash(), level)
        record.weights_bytes, record.probe = weights, probe
        tail = docker_adapter.get_docker().log_lines(container.id, tail=50)
        _measure_sleep(ws, record, tail, after, sleeping)
        if level == 1:
            _record_host_ram(record, tail, rss_before, container.id, same, host_ram)
        sleep_records.write_record(ws, record)
    except (AgentManagerError, OSError) as error:
        # Asleep but unrecorded, a wake would not know its level: wake it back now, and
        # the caller stops it (cold switch) rather than leave nothing awake.
        reason = error.message if isinstance(error, AgentManagerError) else str(error)
        try:
            wake(other.url, agent.name, agent.served_name, level, key, say, WAKE_TIMEOUT_S[level])
            back = "woke it back"
        except SleepFailed:
            back = "waking it back failed too"
        raise SleepFailed(f"{agent.name} fell asleep, but {reason} ({back}).") from None
    kept = record.residual_bytes or DEFAULT_RESIDUAL_BYTES
    ram = f" and {text}" if (text := record.host_ram_text()) else ""
    say(
        f"Put {agent.name} to sleep (level {level}) in {seconds:.2f} s; it keeps "
        f"{kept / GIB:.1f} GiB of GPU memory{ram}."
    )


def _measure_sleep(
    ws: Workspace,
    record: sleep_records.SleepRecord,
    tail: list[str],
    after: int | None,
    sleeping: list[str],
) -> None:
    """What the engine keeps on the GPU: NVML's figure for its own processes (`after`), else
    vLLM's whole-GPU "still in use" (from the log's `tail`) less the other sleepers' share."""
    measure = last_sleep_measure(tail)
    if measure is not None:
        record.freed_bytes = measure.freed_bytes
        record.still_in_use_bytes = measure.still_in_use_bytes
    if after is not None:  # its own processes: no desktop or other engines in the figure
        record.residual_bytes, record.residual_source = max(MIN_RESIDUAL_BYTES, after), "nvml"
    elif measure is not None:
        others = sum(residual_of(ws, load_agent(ws, name)) for name in sleeping)
        record.residual_bytes = measured_residual(measure.still_in_use_bytes, others)
        record.residual_source = "vllm"


def _host_ram_before(
    agent: Agent, weights: int | None, same: sleep_records.SleepRecord | None
) -> int | None:
    """What a level-1 sleep will hold: measured on this container before, else the estimate
    (the local folder's tensors in power-of-two blocks, else 2x the weights)."""
    if same and same.host_ram_measured and same.host_ram_bytes:
        return same.host_ram_bytes
    if weights is None:
        return None
    blocks = tensor_blocks(Path(agent.spec.model)) if agent.spec.local_model else None
    return estimate_backup_bytes(weights, blocks)


def _record_host_ram(
    record: sleep_records.SleepRecord,
    tail: list[str],
    rss_before: int | None,
    container_id: str,
    same: sleep_records.SleepRecord | None,
    estimate: int | None,
) -> None:
    rss_after = container_rss_bytes(container_id) if rss_before is not None else None
    growth = rss_after - rss_before if rss_after is not None and rss_before is not None else None
    measured = measured_host_ram(backed_up_bytes(tail), growth)
    if same and same.host_ram_measured and same.host_ram_bytes:
        # A second sleep reuses PyTorch's cached pinned blocks: the RSS barely grows then.
        measured = max(measured or 0, same.host_ram_bytes)
    if measured:
        record.host_ram_bytes, record.host_ram_measured = measured, True
    else:
        record.host_ram_bytes = estimate


def wake_target(
    ws: Workspace,
    agent: Agent,
    container: AgentContainer,
    say: Say,
    warn: Say,
    within: float,
) -> str | None:
    """Wake `agent`'s sleeping container and confirm it serves; None if it does, else why not
    (said already).

    After a level-2 wake the greedy probe must answer as before the sleep (a bad reload, e.g.
    of a quantized checkpoint, answers otherwise). On failure the caller restarts it cold.
    """
    if container.port is None:
        return "no published port"
    url = http_adapter.base_url(agent.spec.bind, container.port)
    record = sleep_records.asleep_record(ws, agent.name, container.id)
    level = record.level if record else agent.spec.sleep_level
    key = api_key_from(agent.spec.api_key_env)
    timeout = max(1.0, min(within, WAKE_TIMEOUT_S[level]))
    try:
        seconds = wake(url, agent.name, agent.served_name, level, key, say, timeout)
    except SleepFailed as failed:
        say(f"{failed.message} Restarting it cold.")
        return failed.message
    if level == 2 and record is not None and record.probe is not None:
        now = greedy_probe(url, agent.served_name, key)
        if now is not None and now != record.probe:
            why = (
                f"{agent.name} answers differently after its level-2 reload (probe "
                f"{record.probe!r} before the sleep, {now!r} after); restarting it cold."
            )
            warn(why)
            return why
    sleep_records.mark_awake(ws, agent.name)
    say(f"Woke {agent.name} (level {level}) in {seconds:.2f} s.")
    return None


def _confirm_drop(agent: str, container_id: str, before: int | None) -> int | None:
    """Wait for the container's GPU memory to drop; what it holds after (None: unknown)."""
    if before is None:
        return None
    deadline = time.monotonic() + NVML_DROP_WAIT_S
    while True:
        now = container_gpu_bytes(container_id)
        if now is None or dropped(now, before):
            return now
        if time.monotonic() > deadline:
            raise SleepFailed(
                f"{agent} says it sleeps, but its GPU memory stayed at {now / GIB:.1f} GiB "
                f"(NVML) for {NVML_DROP_WAIT_S:.0f} s."
            )
        time.sleep(0.1)
