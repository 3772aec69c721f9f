"""The cold strategy: stop and remove the other containers, wait for the GPU, `compose up -d`."""

from __future__ import annotations

import time

from agent_manager.adapters.compose import read_until_exit
from agent_manager.adapters.containers import project_name
from agent_manager.diagnosis.diagnose import Context, Failure, diagnose
from agent_manager.diagnosis.phases import CREATING, PULLING, phase_of
from agent_manager.errors import LaunchError
from agent_manager.observe.state import AgentState
from agent_manager.switch.context import LaunchFailed, SwitchContext
from agent_manager.switch.stop import STOP_GRACE_S, stop_and_remove
from agent_manager.switch.strategy import BroughtUp, PutAway, SwitchPlan
from agent_manager.switch.vram import GpuWatch


class ColdSwitch:
    """Stop and remove every other container, wait for its GPU memory, `compose up -d`."""

    def put_away(self, ctx: SwitchContext, plan: SwitchPlan) -> PutAway:
        events, done = ctx.events, PutAway()
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
                done.stopped.append(old.agent)
                events.message(f"Stopped {old.agent} in {stopped.seconds:.1f} s.")
        for machine in moving:
            machine.move(AgentState.STOPPED)
        ctx.timings.old_gone = time.time()
        if watch is not None:
            watch.wait_until_free(events.message, ctx.deadline)
        return done

    def bring_up(self, ctx: SwitchContext, plan: SwitchPlan) -> BroughtUp:
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
        return BroughtUp(mine[0])


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
