"""The switch core: the one place that decides and performs a switch to an agent.

`launch`, the router and hot switching all call `switch_to`. Order of work (each step says what
it does through `LaunchEvents`):
1. load the spec, check the API key variable, Docker and Compose, and the fit (planner);
2. take the workspace lock (a second switcher waits here and is told who holds it);
3. pre-flight: the host port is free (or held by one of our agents about to go away) and the
   compose file is current; only then is anything touched;
4. read every agent's state from Docker and choose a strategy (`strategy_for`);
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
from dataclasses import dataclass, field
from typing import Protocol

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters.compose import CONFIG_HASH_LABEL, config_hash_matches, read_until_exit
from agent_manager.adapters.docker import AgentContainer
from agent_manager.compose.files import check_override, write_compose
from agent_manager.compose.render import SERVICE
from agent_manager.errors import LaunchError
from agent_manager.models.cache_state import CacheState, cache_state
from agent_manager.runtime import follow, hot_switch
from agent_manager.runtime.agents import serving_probe
from agent_manager.runtime.context import (
    LaunchEvents,
    LaunchFailed,
    LaunchOptions,
    LaunchProgress,
    LaunchResult,
    LaunchTimings,
    SwitchContext,
)
from agent_manager.runtime.diagnose import Context, Failure, diagnose
from agent_manager.runtime.lock import LockHolder, workspace_lock
from agent_manager.runtime.phases import CREATING, PULLING, phase_of
from agent_manager.runtime.ports import preflight_port
from agent_manager.runtime.preflight import (
    require_api_key,
    require_engine_runs_here,
    require_local_model,
)
from agent_manager.runtime.state import AgentMachine, AgentState, states_from
from agent_manager.runtime.stop import STOP_GRACE_S, stop_and_remove
from agent_manager.runtime.vram import GpuWatch
from agent_manager.spec.endpoint import endpoint_for
from agent_manager.spec.loader import load_agents
from agent_manager.spec.workspace import Workspace, project_name


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
    warnings, hot = hot_switch.check_fit(ws, agent, options.cold, options.force)
    for text in warnings:
        events.warning(text)
    ctx = SwitchContext(ws, agent, options, events, progress, timings, start, docker, hot=hot)

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
        if not (hot and plan.machine(agent.name).state is AgentState.SLEEPING):
            # Before anything stops: a missing Compose must not leave the GPU empty. A wake
            # needs no Compose (its cold fallback checks for itself), and the check costs a
            # `docker compose version` process.
            docker.ensure_compose()
        strategy = strategy_for(ctx, plan)
        strategy.put_away(ctx, plan)
        container = strategy.bring_up(ctx, plan)
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
            _until_ready(ctx, plan.machine(agent.name), container)
            timings.ready = time.time()
            result.ready = True
        result.phase = progress.phase
        result.seconds = round(ctx.elapsed(), 2)
        return result


# --------------------------------------------------------------------------- the plan


@dataclass
class SwitchPlan:
    """What the switch found in Docker, and each agent's state machine from there."""

    containers: list[AgentContainer]  # every container of this instance, newest first
    keep: AgentContainer | None  # the target's own running container, left as it is
    machines: dict[str, AgentMachine]
    staying: set[str] = field(default_factory=set)  # ids of containers left asleep

    @property
    def to_put_away(self) -> list[AgentContainer]:
        return [c for c in self.containers if c is not self.keep and c.id not in self.staying]

    def machine(self, agent: str) -> AgentMachine:
        return self.machines[agent]


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


class SwitchStrategy(Protocol):
    """How the old agents are put away and the new one is brought up.

    Cold (today): stop and remove, then `compose up`. A hot switch (vLLM sleep mode) puts the
    old agent to sleep (ready → sleeping) instead, and wakes a sleeping new one
    (sleeping → starting → ready) instead of creating it: it plugs in at `strategy_for`.
    """

    def put_away(self, ctx: SwitchContext, plan: SwitchPlan) -> None: ...

    def bring_up(self, ctx: SwitchContext, plan: SwitchPlan) -> AgentContainer: ...


def strategy_for(ctx: SwitchContext, plan: SwitchPlan) -> SwitchStrategy:
    """Hot (sleep/wake, see hot_switch.py) unless --cold or the target would not fit beside
    sleepers; a sleeping target is never reused by a cold switch (it would look ready)."""
    if ctx.hot:
        return hot_switch.HotSwitch(ColdSwitch())
    keep = plan.keep
    if keep is not None and plan.machine(keep.agent).state is AgentState.SLEEPING:
        ctx.events.message(f"{keep.agent} sleeps; restarting it cold.")
        plan.keep = None
    return ColdSwitch()


class ColdSwitch:
    """Stop and remove every other container, wait for its GPU memory, `compose up -d`."""

    def put_away(self, ctx: SwitchContext, plan: SwitchPlan) -> None:
        events, progress = ctx.events, ctx.progress
        leaving = plan.to_put_away
        watch = GpuWatch.before_stop([c for c in leaving if c.running], events.message)
        # A stopped agent's leftover container, or a second one of the agent being kept, is
        # housekeeping: the agent's own state does not change.
        moving = [
            plan.machine(agent)
            for agent in dict.fromkeys(c.agent for c in leaving)
            if (plan.keep is None or agent != plan.keep.agent)
            and plan.machine(agent).state is not AgentState.STOPPED
        ]
        for machine in moving:
            if machine.state is not AgentState.STOPPING:  # Docker may be removing it already
                machine.move(AgentState.STOPPING)
        for old in leaving:
            stopped = stop_and_remove(old, grace_s=STOP_GRACE_S, on_progress=events.message)
            if old.running:
                progress.stopped.append(old.agent)
                events.message(f"Stopped {old.agent} in {stopped.seconds:.1f} s.")
        for machine in moving:
            machine.move(AgentState.STOPPED)
        ctx.timings.old_gone = time.time()
        if watch is not None:
            watch.wait_until_free(events.message, ctx.deadline)

    def bring_up(self, ctx: SwitchContext, plan: SwitchPlan) -> AgentContainer:
        agent = ctx.agent
        machine = plan.machine(agent.name)
        if plan.keep is None:
            machine.move(AgentState.STARTING)
        ctx.timings.up_issued = time.time()
        try:
            _compose_up(ctx)
        except LaunchFailed:
            machine.move(AgentState.FAILED)
            raise
        ctx.timings.up_done = time.time()
        for project in sorted({c.project for c in plan.to_put_away if c.agent != agent.name}):
            ctx.docker.remove_project_networks(project)
        mine = [c for c in ctx.docker.list_agent_containers() if c.agent == agent.name]
        if not mine:
            raise LaunchError(
                f"`docker compose up` succeeded but no container of {agent.name} exists.",
                hint=f"Check {ctx.ws.compose_path(agent.name)} and your override file, then "
                f"`docker compose -p {project_name(agent.name)} ps -a`.",
            )
        ctx.progress.container = mine[0].name
        return mine[0]


def _compose_up(ctx: SwitchContext) -> None:
    """`docker compose up -d`, cut at the deadline; a failure is diagnosed from its output."""
    agent, ws = ctx.agent, ctx.ws
    ctx.progress.compose_started = True

    def on_line(line: str) -> None:
        phase = phase_of(line)
        if phase in (PULLING, CREATING):
            ctx.set_phase(phase)

    process = ctx.docker.start_compose(ws, agent.name, "up", "-d", offline=ctx.offline)
    run = read_until_exit(process, ctx.deadline, on_line)
    if run.code is None:
        doing = " (still pulling the image)" if ctx.progress.phase == PULLING else ""
        raise LaunchError(
            f"`docker compose up` for {agent.name} did not finish within "
            f"{ctx.options.timeout:.0f} s{doing}.",
            hint="Check the Docker daemon (`docker info`) and the network, then launch again "
            f"with a larger --timeout; `agent-manager stop {agent.name}` removes what it left.",
            details=run.output[-10:],
        )
    if run.code != 0:
        failure = diagnose(
            run.output, Context(agent.name, None, "not-created", spec_path=agent.path)
        )
        if failure.kind == "unrecognised":
            failure = Failure(
                "compose-failed",
                f"`docker compose up` failed (exit code {run.code}).",
                f"Check {ws.compose_path(agent.name)} and, if you have one, "
                f"{ws.override_path(agent.name)}; its output is below.",
                run.output[-30:],
            )
        raise LaunchFailed(agent.name, failure, None)


def _until_ready(ctx: SwitchContext, machine: AgentMachine, container: AgentContainer) -> None:
    try:
        follow.follow_until_ready(ctx, container)
    except LaunchFailed:
        machine.move(AgentState.FAILED)
        raise
    if machine.state is not AgentState.READY:
        machine.move(AgentState.READY)
