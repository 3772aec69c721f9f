"""The generated compose files on disk: are they current, and (re)write them atomically."""

from __future__ import annotations

from enum import Enum

from agent_manager.compose.render import render_compose_text
from agent_manager.fsio import write_text_atomic
from agent_manager.spec.agents import Agent
from agent_manager.spec.workspace import Workspace


class ComposeState(str, Enum):
    CURRENT = "current"
    STALE = "stale"
    MISSING = "missing"


def compose_state(ws: Workspace, agent: Agent) -> ComposeState:
    path = ws.compose_path(agent.name)
    try:
        on_disk = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ComposeState.MISSING
    return ComposeState.CURRENT if on_disk == render_compose_text(agent) else ComposeState.STALE


def write_compose(ws: Workspace, agent: Agent) -> bool:
    """Write the agent's compose file if it differs; True when something was written.

    Only the generated file is ever written; the user's override file is never touched.
    """
    if compose_state(ws, agent) is ComposeState.CURRENT:
        return False
    write_text_atomic(ws.compose_path(agent.name), render_compose_text(agent))
    return True
