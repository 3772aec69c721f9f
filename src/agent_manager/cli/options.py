"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent_manager.spec.workspace import Workspace, resolve_workspace

AgentArg = Annotated[str, typer.Argument(help="Agent name (architect, developer/dev, po, ...).")]
AgentsArg = Annotated[
    list[str] | None, typer.Argument(help="Agent names; all agents when none are given.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]

_home: Path | None = None


def set_home(home: Path | None) -> None:
    global _home
    _home = home


def workspace() -> Workspace:
    """The workspace chosen by --home, AGENT_MANAGER_HOME or the current directory."""
    return resolve_workspace(_home)
