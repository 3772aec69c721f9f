"""`serve`: parse → router/server.py."""

from __future__ import annotations

from typing import Annotated

import typer

from agent_manager.cli.options import workspace


def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on; anything but loopback needs --api-key-env.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8080,
    idle_stop: Annotated[
        str | None,
        typer.Option(
            "--idle-stop",
            help="Stop the active agent after this long without a request (30m, 90s, 1h), "
            "for every agent; default: each spec's idle_minutes (30). The next request starts "
            "it again.",
        ),
    ] = None,
    max_queue: Annotated[
        int,
        typer.Option("--max-queue", min=1, help="Requests that may wait per agent (then 429)."),
    ] = 100,
    max_wait: Annotated[
        float,
        typer.Option("--max-wait", min=1, help="Seconds a request may wait for its agent (503)."),
    ] = 600.0,
    drain_timeout: Annotated[
        float,
        typer.Option(
            "--drain-timeout",
            min=1,
            help="Seconds in-flight requests get to finish before a switch or on exit (then 503).",
        ),
    ] = 60.0,
    switch_timeout: Annotated[
        float,
        typer.Option(
            "--switch-timeout", min=1, help="Seconds an agent may take to start (as launch)."
        ),
    ] = 1200.0,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            help="Environment variable holding the key clients must send (never the key).",
        ),
    ] = None,
    max_body: Annotated[
        int,
        typer.Option("--max-body", min=1, help="Largest request body in MiB (then 413)."),
    ] = 32,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections", min=1, help="Client connections held at once (then closed)."
        ),
    ] = 1000,
    stop_agents_on_exit: Annotated[
        bool,
        typer.Option("--stop-agents-on-exit", help="Stop the running agent when the router exits."),
    ] = False,
    access_log: Annotated[
        bool,
        typer.Option("--access-log", help="Log one line per request (also with --debug)."),
    ] = False,
) -> None:
    """Serve all agents behind one OpenAI endpoint.

    The body's `model` names the agent (served name, agent name or alias); a request for another
    agent than the running one waits while the router switches on demand (same core as
    `launch`).
    Policy and routes: docs/router.md.
    """
    from agent_manager.cli.errors import debug_enabled
    from agent_manager.router.config import RouterConfig, finite_seconds, parse_duration
    from agent_manager.router.limits import MIB, ClientLimits
    from agent_manager.router.server import serve as run_server

    for option, value in (
        ("--max-wait", max_wait),
        ("--drain-timeout", drain_timeout),
        ("--switch-timeout", switch_timeout),
    ):
        finite_seconds(value, option)
    config = RouterConfig(
        host=host,
        port=port,
        idle_stop_s=parse_duration(idle_stop, "--idle-stop") if idle_stop else None,
        max_queue=max_queue,
        max_wait_s=max_wait,
        drain_timeout_s=drain_timeout,
        switch_timeout_s=switch_timeout,
        api_key_env=api_key_env,
        stop_agents_on_exit=stop_agents_on_exit,
        limits=ClientLimits(max_body_bytes=max_body * MIB, max_connections=max_connections),
        debug=debug_enabled(),
        access_log=access_log or debug_enabled(),
    )
    raise typer.Exit(run_server(workspace(create=True), config))
