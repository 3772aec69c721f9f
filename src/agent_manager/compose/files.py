"""The generated compose files on disk: are they current, and (re)write them atomically."""

from __future__ import annotations

from enum import Enum
from typing import Any

from agent_manager.compose.render import render_compose_text
from agent_manager.errors import SpecError
from agent_manager.fsio import file_error, write_text_atomic
from agent_manager.spec.agents import Agent
from agent_manager.spec.workspace import Workspace


class ComposeState(str, Enum):
    CURRENT = "current"
    STALE = "stale"
    MISSING = "missing"


def compose_state(ws: Workspace, agent: Agent) -> ComposeState:
    path = ws.compose_path(agent.name)
    try:
        on_disk = path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return ComposeState.MISSING
    except OSError as error:
        raise file_error(error, path, "read") from None
    return ComposeState.CURRENT if on_disk == render_compose_text(agent) else ComposeState.STALE


def write_compose(ws: Workspace, agent: Agent) -> bool:
    """Write the agent's compose file if it differs; True when something was written.

    Only the generated file is ever written; the user's override file is never touched.
    """
    if compose_state(ws, agent) is ComposeState.CURRENT:
        return False
    write_text_atomic(ws.compose_path(agent.name), render_compose_text(agent))
    return True


def check_override(ws: Workspace, name: str) -> bool:
    """Is the user's override usable? False when there is none; a SpecError saying what is
    wrong when Compose could not read it. Only read, never written."""
    import yaml

    loader = _override_loader()
    path = ws.override_path(name)
    ws.compose_files(name)  # refuses a folder or a broken link
    if not path.is_file():
        return False
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{path} is not UTF-8 text.", hint="Save it as UTF-8.") from None
    except OSError as error:
        raise file_error(error, path, "read") from None
    try:
        data: Any = yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise SpecError(
            f"{where}: the override is not valid YAML, so every Compose command would fail.",
            hint="Fix that line (agent-manager never writes this file), or remove the file.",
        ) from None
    if data is not None and not isinstance(data, dict):
        raise SpecError(
            f"{path}: the override must be a Compose mapping (e.g. 'services:'), not a "
            f"{type(data).__name__}.",
            hint="See compose/docker-compose-<agent>.yml for the layout it overrides.",
        )
    return True


def _override_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        """Reads Compose's own tags (`!reset`, `!override`) as plain values."""

    def untagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_scalar(node)  # type: ignore[arg-type]

    for tag in ("!reset", "!override"):
        Loader.add_constructor(tag, untagged)
    return Loader
