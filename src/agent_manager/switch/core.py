"""The switch core: the one place that decides and performs a switch to an agent.

`launch`, the router and hot switching all call `switch_to`. Order of work (each step says what
it does through `LaunchEvents`):
1. load the spec, check the API key variable and Docker, and the plain fit (`fit.quick_fit`:
   what cannot fit even on a card we emptied is refused before waiting for the lock);
2. take the workspace lock (a second switcher waits here and is told who holds it);
3. read what runs once (containers, every agent's state; a sleep agent's /is_sleeping), and
   pre-flight: the host port is free (or held by one of our agents about to go away) and the
   compose file is current; only then is anything touched;
4. from that one read, the fit with the sleepers counted (`fit.fit_in_plan`: may they stay?),
   Compose is there (unless the target only wakes), and the strategy (`strategy_for`);
5. put the old agents away (cold: stop and remove each container, wait until it is gone, then
   until the GPU memory it held is free);
6. bring the new agent up (cold: `docker compose up -d`), then follow it until /health answers
   and /v1/models lists the served name, or diagnose why it stopped.
The lock is held until the agent is ready (or failed), so concurrent switches end with exactly
the last one's agent running. Every state change goes through an `AgentMachine`, so an
impossible move (a container changed under us) fails loudly instead of being papered over.
"""

from __future__ import annotations

import time

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters.compose import CONFIG_HASH_LABEL, config_hash_matches
from agent_manager.adapters.docker import AgentContainer
from agent_manager.compose.files import check_override, write_compose
from agent_manager.compose.render import SERVICE
from agent_manager.models.cache_state import CacheState, cache_state
from agent_manager.observe.ports import preflight_port
from agent_manager.observe.state import AgentMachine, AgentState, states_from
from agent_manager.observe.status import serving_probe
from agent_manager.spec.endpoint import endpoint_for
from agent_manager.spec.loader import load_agents
from agent_manager.spec.workspace import Workspace
from agent_manager.switch import follow
from agent_manager.switch.cold import ColdSwitch
from agent_manager.switch.context import (
    LaunchEvents,
    LaunchFailed,
    LaunchOptions,
    LaunchProgress,
    LaunchResult,
    LaunchTimings,
    SwitchContext,
)
from agent_manager.switch.fit import fit_in_plan, quick_fit
from agent_manager.switch.hot import HotSwitch
from agent_manager.switch.lock import LockHolder, workspace_lock
from agent_manager.switch.memory_retry import retry_cold
from agent_manager.switch.preflight import (
    require_api_key,
    require_engine_runs_here,
    require_local_model,
)
from agent_manager.switch.strategy import SwitchPlan, SwitchStrategy


def switch_to(
    ws: Workspace,
    name: str,
    options: LaunchOptions | None = None,
    events: LaunchEvents | None = None,
    progress: LaunchProgress | None = None,
) -> LaunchResult:
    """Make `name` the one agent running, and (unless options.wait is off) ready."""
    options = options or LaunchOptions()
    events = events or LaunchEvents()
    timings = LaunchTimings(started=time.time())
    start = time.monotonic()
    agent = load_agents(ws, [ws.resolve_agent(name)], engine=options.engine)[0]
    if agent.engine_note is not None:
        events.message(agent.engine_note)
    # A broken override would fail `compose up` after the running agent was stopped.
    check_override(ws, agent.name)
    require_api_key(agent)
    require_local_model(agent)
    progress = progress if progress is not None else LaunchProgress(agent.name)
    progress.agent = agent.name
    docker = docker_adapter.get_docker()
    require_engine_runs_here(agent)
    # Refused here, a launch that cannot fit never waits for the lock; the verdict with the
    # sleepers counted comes from the one read of what runs, inside the lock.
    plain = quick_fit(agent, options)
    ctx = SwitchContext(ws, agent, options, events, progress, timings, start, docker)

    def waiting(holder: LockHolder) -> None:
        events.message(f"Waiting for {holder.describe()} to finish (workspace lock)...")

    with workspace_lock(
        ws.lock_path,
        agent=agent.name,
        command=f"launch {agent.name}",
        timeout=ctx.remaining(),
        on_wait=waiting,
    ):
        timings.lock_acquired = time.time()
        plan = _prepare(ctx)
        warnings, ctx.hot = fit_in_plan(ws, agent, plan, options, plain)
        warnings = [*agent.notices, *warnings]  # e.g. sleep turned off on the CPU engine
        for text in warnings:
            events.warning(text)
        if not (ctx.hot and plan.machine(agent.name).state is AgentState.ASLEEP):
            # Before anything stops: a missing Compose must not leave the GPU empty. A wake
            # needs no Compose (its cold fallback checks for itself), and the check costs a
            # `docker compose version` process.
            docker.ensure_compose()
        strategy = strategy_for(ctx, plan)
        away = strategy.put_away(ctx, plan)
        progress.stopped, progress.asleep = away.stopped, away.asleep
        up = strategy.bring_up(ctx, plan)
        container = up.container
        progress.container, progress.woke = container.name, up.woke
        result = LaunchResult(
            agent=agent.name,
            served_name=agent.served_name,
            endpoint=endpoint_for(agent).url + "/v1",
            container=container.name,
            ready=False,
            seconds=0.0,
            phase=progress.phase,
            stopped=progress.stopped,
            warnings=warnings,
            timings=timings,
            switch="hot" if progress.woke else "cold",
            asleep=progress.asleep,
        )
        if progress.woke:  # the wake confirmed it serves the name
            progress.phase = "ready"
            timings.ready = time.time()
            result.ready = True
        elif options.wait:
            try:
                _until_ready(ctx, plan.machine(agent.name), container)
            except LaunchFailed as failed:
                # Out of memory beside sleepers: stop them and start cold, once.
                again = retry_cold(ctx, plan, container, failed)
                if again is None:
                    raise
                result.container, result.asleep = again.container.name, []
                _until_ready(ctx, plan.machine(agent.name), again.container)
            timings.ready = time.time()
            result.ready = True
        result.phase = progress.phase
        result.seconds = round(ctx.elapsed(), 2)
        return result


# --------------------------------------------------------------------------- the plan


def _prepare(ctx: SwitchContext) -> SwitchPlan:
    """Pre-flight (nothing is touched if it fails), the compose file, and Docker's state."""
    agent, events = ctx.agent, ctx.events
    containers = ctx.docker.list_agent_containers()
    preflight_port(agent, containers)
    if write_compose(ctx.ws, agent):
        events.message(f"Wrote {ctx.ws.compose_path(agent.name)} (the spec changed).")
    ctx.offline = cache_state(agent) is CacheState.COMPLETE
    now = states_from(containers, [agent.name], serving_probe(ctx.ws))
    machines = {
        name: AgentMachine(name, found.state, on_change=events.state) for name, found in now.items()
    }
    return SwitchPlan(containers, _reusable(ctx, containers), machines)


def _reusable(ctx: SwitchContext, containers: list[AgentContainer]) -> AgentContainer | None:
    """The agent's own running container when `up -d` would keep it as it is.

    Anything else is stopped here, with the GPU-memory wait, rather than recreated by Compose
    (which starts the new container at once, before the old one's memory is free).
    """
    agent = ctx.agent
    for container in containers:
        if container.agent != agent.name or not container.running:
            continue
        if container.spec_hash != agent.spec_hash():
            return None
        # The spec is the same; the override file or the environment may not be.
        label = container.labels.get(CONFIG_HASH_LABEL)
        if config_hash_matches(
            ctx.ws,
            agent.name,
            SERVICE,
            ctx.offline,
            label,
            lambda: ctx.docker.compose_config_hash(ctx.ws, agent.name, SERVICE, ctx.offline),
        ):
            return container
        return None
    return None


# --------------------------------------------------------------------------- strategies


def strategy_for(ctx: SwitchContext, plan: SwitchPlan) -> SwitchStrategy:
    """Hot (sleep/wake, hot.py) unless --cold or the target would not fit beside the sleepers
    (`ctx.hot`, decided by `fit_in_plan`); a cold switch never reuses a sleeping target (it
    would look ready): it is restarted."""
    if ctx.hot:
        return HotSwitch(ColdSwitch())
    keep = plan.keep
    if keep is not None and plan.machine(keep.agent).state is AgentState.ASLEEP:
        ctx.events.message(f"{keep.agent} sleeps; restarting it cold.")
        plan.keep = None
    return ColdSwitch()


def _until_ready(ctx: SwitchContext, machine: AgentMachine, container: AgentContainer) -> None:
    try:
        follow.follow_until_ready(ctx, container)
    except LaunchFailed:
        machine.move(AgentState.FAILED)
        raise
    if machine.state is not AgentState.READY:
        machine.move(AgentState.READY)
