"""`launch`, `stop`, `status`, `logs`: parse → call switch/ (launch, stop) or observe/ (status,
logs) → render."""

from __future__ import annotations

import sys
import time
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from agent_manager import ui
from agent_manager.cli.launch_view import (
    failure_dict,
    render_failure,
    render_launched,
    switch_with_view,
)
from agent_manager.cli.options import AgentArg, JsonOpt, workspace

if TYPE_CHECKING:
    from agent_manager.router.state_file import RouterView


class EngineChoice(str, Enum):
    cuda = "cuda"
    cpu = "cpu"


LaunchTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=1,
        help="Seconds to wait for the workspace lock and for the agent to serve "
        "(first starts download and compile: minutes).",
    ),
]
StopTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout", min=1, help="Seconds vLLM gets to finish requests before it is killed."
    ),
]


# --------------------------------------------------------------------------- launch


def launch(
    agent: AgentArg,
    timeout: LaunchTimeoutOpt = 1200.0,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return once the container has started.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Launch even if the planner says it will not fit.")
    ] = False,
    engine: Annotated[
        EngineChoice | None,
        typer.Option("--engine", help="Run on this engine instead of the spec's (cuda or cpu)."),
    ] = None,
    cold: Annotated[
        bool,
        typer.Option("--cold", help="Stop the others and start cold, even `switch: sleep` ones."),
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Start an agent and wait until it serves.

    A `switch: sleep` agent that runs is put to sleep instead of stopped, and a sleeping
    agent is woken in seconds (docs/hot-switch.md); otherwise:
    stops any other agent first and waits for its GPU memory, checks the port, runs
    `docker compose up -d`, shows vLLM's startup phase, and returns once /health answers and
    /v1/models lists the served name. A failed start is explained with what to do.
    """
    from agent_manager.switch.context import LaunchFailed, LaunchOptions

    ws = workspace(create=True)
    options = LaunchOptions(
        timeout=timeout,
        wait=not no_wait,
        force=force,
        cold=cold,
        engine=engine.value if engine is not None else None,
    )

    def on_failure(failed: LaunchFailed) -> None:
        if json_output:
            ui.print_json(
                {
                    "agent": failed.agent,
                    "ready": False,
                    "container": failed.container,
                    "failure": failure_dict(failed.failure),
                }
            )
        else:
            render_failure(failed.agent, failed.failure, failed.container)

    result = switch_with_view(ws, agent, options, on_failure)
    if json_output:
        ui.print_json(result)
        return
    render_launched(result)


# --------------------------------------------------------------------------- stop


def stop(
    agent: Annotated[
        str | None, typer.Argument(help="Agent to stop; default: the one that runs.")
    ] = None,
    all_: Annotated[
        bool,
        typer.Option("--all", help="Stop and remove every container of ours, crashed included."),
    ] = False,
    timeout: StopTimeoutOpt = 30.0,
    json_output: JsonOpt = False,
) -> None:
    """Stop an agent gracefully.

    vLLM finishes in-flight requests, then the container is removed (nothing running is
    fine).
    """
    from agent_manager.switch.stop import stop_agents

    ws = workspace(create=True)
    report = stop_agents(ws, agent, everything=all_, grace_s=timeout, on_progress=ui.info)
    if json_output:
        ui.print_json(report)
        return
    console = ui.out()
    if report.nothing_to_stop:
        if agent:
            what = f"{ws.resolve_agent(agent)} has no container"
        else:
            what = "no container of ours exists" if all_ else "no agent is running"
        console.print(f"Nothing to stop: {what}.", markup=False)
        return
    for item in report.stopped:
        console.print(
            f"Stopped {item.agent} (container {item.container}, was {item.was}) "
            f"in {item.seconds:.1f} s.",
            markup=False,
        )


# --------------------------------------------------------------------------- status


def status(json_output: JsonOpt = False) -> None:
    """Show which agent runs, its health and load.

    Health, endpoint, uptime and load (from vLLM's /metrics); a crashed agent is shown with
    its exit reason.
    """
    from agent_manager.observe.status import collect_status
    from agent_manager.router.state_file import router_view

    ws = workspace()
    report = collect_status(ws)
    router = router_view(ws, ui.warn)
    if json_output:
        ui.print_json({**report.model_dump(), "router": router.model_dump() if router else None})
        return
    console = ui.out()
    if router is not None:
        console.print(_router_line(router), markup=False)
    if not report.agents:
        console.print("No agent is running.", markup=False)
        if router is None:
            ui.hint("Start one with `agent-manager launch <agent>`.")
        return
    from agent_manager.cli.fitted_table import Column, fitted_table

    columns = [
        Column("agent", keep=9),
        Column("state", keep=8),
        Column("health", keep=8),
        Column("endpoint", keep=9, whole=True),
        Column("model", keep=6, whole=True),
        Column("up", keep=4),
        Column("run/wait", keep=3),
        Column("KV", keep=2),
        Column("cache", keep=1),
    ]
    rows = []
    for row in report.agents:
        reqs = (
            f"{row.requests_running}/{row.requests_waiting}"
            if row.requests_running is not None
            else "-"
        )
        kv = f"{row.kv_cache_usage * 100:.1f}%" if row.kv_cache_usage is not None else "-"
        state = row.state if row.exit_code in (None, 0) else f"{row.state} ({row.exit_code})"
        rows.append(
            [
                escape(row.agent),
                escape(state),
                row.health.value,
                escape(row.endpoint or "-"),
                escape(row.served_name or "-"),
                _duration(row.uptime_s),
                reqs,
                kv,
                row.model_cache or "-",
            ]
        )
    console.print(fitted_table(columns, rows))
    if report.running is None:
        console.print("No agent is running.", markup=False)
    for row in report.agents:
        if row.sleep:
            console.print(f"{row.agent} is {row.sleep}.", markup=False)
        elif row.host_ram:
            console.print(f"{row.agent} holds {row.host_ram} since its level-1 sleep.",
                          markup=False)  # fmt: skip
    for row in report.agents:
        if row.exit_reason:
            console.print(f"{row.agent} crashed: {row.exit_reason}", markup=False)
            if row.exit_fix:
                console.print(f"  What to do: {row.exit_fix}", markup=False)
            console.print(ui.with_home(f"  Full log: agent-manager logs {row.agent}"), markup=False)


def _router_line(router: RouterView) -> str:
    where = f"Router: {router.url}/v1 (pid {router.pid})"
    if not router.answering:
        return f"{where}, not answering /router/status."
    queue = ", ".join(f"{agent} {count}" for agent, count in sorted(router.queue.items()))
    idle = ""
    if router.active and router.idle_stop_s:
        left = "in use" if router.idle_left_s is None else f"{_duration(router.idle_left_s)} left"
        idle = f", idle stop after {_duration(router.idle_stop_s)} ({left})"
    return (
        f"{where}, active agent: {router.active or 'none'}, queue: {queue or 'empty'}, "
        f"switches: {router.switches}{idle}."
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# --------------------------------------------------------------------------- logs


def logs(
    agent: AgentArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the container stops.")
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", min=0, help="Only the last N lines.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only lines since a duration ago (10m, 2h) or a time."),
    ] = None,
) -> None:
    """Print or follow an agent's vLLM log.

    The running container's log, or the last crashed one's.
    """
    from agent_manager.adapters.docker import get_docker
    from agent_manager.observe.logs import container_for_logs, parse_since

    ws = workspace()
    name = ws.resolve_agent(agent)
    since_epoch = parse_since(since) if since else None
    container = container_for_logs(name)
    if not container.running:
        code = f" with code {container.exit_code}" if container.exit_code is not None else ""
        ui.hint(f"{name} is not running ({container.state}{code}); its last log follows.")
    stream = get_docker().log_stream(container.id, follow=follow, tail=tail, since=since_epoch)
    out = sys.stdout
    try:
        if tail == 0:
            if not follow:
                return
            # Docker treats tail=0 as "all"; start following from now instead.
            stream.close()
            stream = get_docker().log_stream(container.id, follow=True, since=time.time())
        for line in stream:
            out.write(line + "\n")
            out.flush()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a user ends `logs -f`: a clean end, not an error
    except BrokenPipeError:
        pass  # `logs po | head`
    finally:
        stream.close()
