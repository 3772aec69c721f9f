"""Workspace settings: the optional `agent-manager.yaml` beside `agents/`.

Only defaults that every agent inherits unless its own spec sets the field:

    # agent-manager.yaml
    defaults:
      switch: sleep      # cold (default) | sleep
      sleep_level: 1     # 1 (weights to host RAM) | 2 (weights reloaded from disk)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from agent_manager.errors import SpecError
from agent_manager.spec.workspace import Workspace

SETTINGS_FILE = "agent-manager.yaml"


class AgentDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    switch: Literal["cold", "sleep"] | None = None
    sleep_level: Literal[1, 2] | None = None


class WorkspaceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: AgentDefaults = AgentDefaults()


def settings_path(ws: Workspace) -> Path:
    return ws.root / SETTINGS_FILE


def load_settings(ws: Workspace) -> WorkspaceSettings:
    """The workspace's settings; all defaults when the file does not exist."""
    path = settings_path(ws)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return WorkspaceSettings()
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _parse(path: Path, mtime_ns: int, size: int) -> WorkspaceSettings:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise SpecError(
            f"{path}: cannot be read as YAML ({str(error).splitlines()[0]}).",
            hint="It holds workspace defaults, e.g. 'defaults: {switch: sleep}'.",
        ) from None
    try:
        return WorkspaceSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        dotted = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        raise SpecError(
            f"{path}: '{dotted}': {message} (got {first.get('input')!r}).",
            hint="Allowed: 'defaults:' with 'switch: cold|sleep' and 'sleep_level: 1|2'.",
        ) from None
