"""Options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from agent_manager import ui
from agent_manager.spec.workspace import Workspace, resolve_workspace

AgentArg = Annotated[str, typer.Argument(help="Agent name (architect, developer/dev, po, ...).")]
AgentsArg = Annotated[
    list[str] | None, typer.Argument(help="Agent names; all agents when none are given.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]

_home: Path | None = None


def set_home(home: Path | None, commands: Sequence[str] = ()) -> None:
    """The `--home` in use; every command line we print then carries it."""
    global _home
    _home = home
    ui.set_command_home(None if home is None else str(home), commands)


def workspace(*, create: bool = False) -> Workspace:
    """The workspace chosen by --home, AGENT_MANAGER_HOME or the current directory.

    Commands that only read pass nothing: they never create a workspace, and before one exists
    they read the default agents and say how to make one. Commands that write (compose, launch,
    stop, serve) pass create=True, which seeds the user config folder the first time.
    """
    ws = resolve_workspace(_home, create=create)
    if ws.is_defaults_only:
        ui.hint(
            f"No workspace yet, so these are the default agents; `agent-manager init {ws.root}` "
            "makes them yours to edit (or `launch` does, the first time)."
        )
    return ws
