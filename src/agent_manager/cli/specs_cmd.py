"""`list` and `compose`: what the agents are, and their generated compose files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent_manager import ui
from agent_manager.cli.options import AgentsArg, JsonOpt, workspace

if TYPE_CHECKING:
    from agent_manager.observe.agent_list import AgentList
    from agent_manager.spec.workspace import Workspace


def list_agents(json_output: JsonOpt = False) -> None:
    """List agents, endpoints and compose state.

    Shows the workspace in use and, for every agent, its model, endpoint, context, memory
    fraction and whether its compose file is current.
    """
    from agent_manager.observe.agent_list import collect_agent_list

    result = collect_agent_list(workspace())
    if json_output:
        ui.print_json(result)
    else:
        _render_list(result)
    if result.invalid:
        for problem in result.invalid.values():
            ui.error(problem.message, problem.hint)
        raise typer.Exit(2)  # a spec to fix: the user's input


def _render_list(result: AgentList) -> None:
    from agent_manager.compose.files import ComposeState
    from agent_manager.models.cache_state import CacheState

    console = ui.out()
    console.print(f"Workspace: {result.workspace} ({result.workspace_source})", markup=False)
    from agent_manager.cli.fitted_table import Column, fitted_table

    columns = [
        Column("agent", keep=9),
        Column("model", keep=8, whole=True),
        Column("endpoint", keep=9, whole=True),
        Column("context", keep=4),
        Column("mem", keep=2),
        Column("compose", keep=6),
        Column("cache", keep=3),
    ]
    rows = []
    for row in result.agents:
        compose = row.compose.value + (" +override" if row.override else "")
        context = "default" if row.max_context is None else str(row.max_context)
        rows.append(
            [
                row.name,
                row.model + (f"@{row.revision}" if row.revision else ""),
                row.endpoint,
                context,
                f"{row.gpu_memory_fraction:.2f}"
                if row.engine == "cuda"
                else f"cpu, {row.cpu_kv_cache_gib} GiB KV",
                compose,
                row.model_cache.value,
            ]
        )
    table = fitted_table(columns, rows)
    console.print(table)
    for row in result.agents:
        if row.aliases:
            console.print(f"{row.name}: also answers to {', '.join(row.aliases)}", markup=False)
    for row in result.agents:
        if row.switch != "cold":
            state = row.asleep or (
                f"awake, holds {row.host_ram} since its level-1 sleep"
                if row.host_ram
                else "awake or stopped"
            )
            console.print(f"{row.name}: switch {row.switch}; {state}", markup=False)
    for path, better in result.misnamed.items():
        ui.warn(
            f"{path} is not read (only agents/<lower-case name>.yaml is); rename it to {better}."
        )
    for orphan in result.orphan_compose:
        ui.warn(f"{orphan} belongs to no agent (its spec is gone); delete it if unused.")
    if not result.agents:
        ui.hint("No agents yet: add agents/<name>.yaml.")
    elif any(row.compose is not ComposeState.CURRENT for row in result.agents):
        ui.hint("Run `agent-manager compose` to (re)write stale or missing compose files.")
    if any(row.model_cache is not CacheState.COMPLETE for row in result.agents):
        ui.hint("Run `agent-manager download-models` to fetch models not complete in the cache.")


def compose(
    agents: AgentsArg = None,
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 if any compose file is stale or missing."
    ),
) -> None:
    """Write the agents' compose files.

    (Re)writes compose/docker-compose-<agent>.yml for the named agents (all by default).
    The user's compose/docker-compose-<agent>.override.yml is never written.
    """
    from agent_manager.compose.files import (
        ComposeState,
        check_override,
        compose_state,
        write_compose,
    )
    from agent_manager.spec.loader import load_agents

    ws = workspace(create=not check)
    loaded = load_agents(ws, agents or None)
    if not loaded:
        ui.info(f"No agents in {ws.agents_dir}: nothing to write.")
        ui.hint("Add agents/<name>.yaml (copy a default spec), or `agent-manager init DIR`.")
        _warn_misnamed(ws)
        return
    for agent in loaded:
        check_override(ws, agent.name)
    if check:
        stale = [a for a in loaded if compose_state(ws, a) is not ComposeState.CURRENT]
        for agent in stale:
            state = compose_state(ws, agent).value
            ui.info(f"{ws.compose_path(agent.name)}: {state}")
        if stale:
            ui.hint("Run `agent-manager compose` to rewrite them.")
            raise typer.Exit(1)
        ui.success(f"{len(loaded)} compose file(s) up to date.")
        return
    for agent in loaded:
        path = ws.compose_path(agent.name)
        if write_compose(ws, agent):
            ui.success(f"wrote {path}")
        else:
            ui.info(f"unchanged {path}")


def _warn_misnamed(ws: Workspace) -> None:
    for path, better in ws.misnamed_specs().items():
        ui.warn(
            f"{path} is not read (only agents/<lower-case name>.yaml is); rename it to {better}."
        )


def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder for the new workspace (created if missing).")
    ],
) -> None:
    """Create a workspace with the default agents.

    Makes DIR/agents (copies of the default specs, never overwriting a file) and DIR/compose.
    Use it with --home DIR or AGENT_MANAGER_HOME=DIR.
    """
    from agent_manager.spec.workspace import init_workspace

    target = directory.expanduser().absolute()
    existed = (target / "agents").is_dir()
    try:
        ws = init_workspace(target)
    except OSError as error:
        from agent_manager.fsio import file_error

        raise file_error(error, error.filename or target, "create") from None
    if existed:
        ui.info(f"{ws.root} is already a workspace; nothing was changed.")
    else:
        ui.success(f"created {ws.root} with agents: {', '.join(ws.agent_names()) or 'none'}")
    ui.hint(f"Use it with `agent-manager --home {ws.root} list`.")
