"""Loading agents from the workspace: read `agents/<name>.yaml` safely, validate it with
`parse_spec`, and check what no single file can (two agents on one port)."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from agent_manager.errors import AgentManagerError, SpecError
from agent_manager.fsio import file_error
from agent_manager.spec.agents import Agent, Engine, parse_spec
from agent_manager.spec.engine_choice import MachineEngines, machine_engines, resolve_engine
from agent_manager.spec.settings import load_settings
from agent_manager.spec.uniqueness import check_unique_names
from agent_manager.spec.workspace import Workspace
from agent_manager.spec.yaml_load import MAX_SPEC_BYTES, check_spec_size


def load_agent(
    ws: Workspace,
    name: str,
    engine: Engine | None = None,
    machine: Callable[[], MachineEngines] = machine_engines,
) -> Agent:
    """The agent as it will run: on `engine` when given (`--engine`), else on its spec's
    engine, `auto` resolved for `machine` (this one unless told; spec/engine_choice.py)."""
    path = ws.spec_path(name)
    shown = display_path(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(shown))
        if not stat.S_ISREG(info.st_mode):
            # A link to /dev/zero or a pipe would be read for ever.
            raise SpecError(
                f"{shown} is not a regular file (a device, pipe or socket).",
                hint="Replace it with a plain YAML file.",
            )
        check_spec_size(shown, info.st_size)
        with path.open("rb") as handle:
            data = handle.read(MAX_SPEC_BYTES + 1)
        check_spec_size(shown, len(data))  # it grew since stat
        text = data.decode("utf-8")
    except FileNotFoundError:
        if path.is_symlink():
            raise SpecError(
                f"{shown} is a link to {os.readlink(path)}, which does not exist.",
                hint="Point the link at an existing spec, or remove it.",
            ) from None
        raise SpecError(f"{shown} does not exist.") from None
    except UnicodeDecodeError as error:
        raise SpecError(
            f"{shown}: byte {error.start} is not UTF-8 text.",
            hint="Save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).",
        ) from None
    except OSError as error:
        raise file_error(error, shown, "read") from None
    defaults = load_settings(ws).defaults.model_dump(exclude_none=True)
    agent = _parsed(name, shown, text, json.dumps(defaults, sort_keys=True))
    return resolve_engine(agent, machine, engine)


@lru_cache(maxsize=64)
def _parsed(name: str, shown: Path, text: str, defaults: str) -> Agent:
    """`parse_spec`, remembered by the file's text: a switch reads the same specs several times
    and pure-Python YAML parsing was a third of a hot switch's own time. Agents are frozen."""
    return parse_spec(name, shown, text, json.loads(defaults))


def display_path(path: Path) -> Path:
    """The path as a user in the current directory would type it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def load_agents(
    ws: Workspace,
    names: list[str] | None = None,
    engine: Engine | None = None,
    machine: Callable[[], MachineEngines] = machine_engines,
) -> list[Agent]:
    """Load the named agents (all by default), and check what no single file can: ports, names."""
    agents = [load_agent(ws, name, engine, machine) for name in ws.resolve_agents(names)]
    if names is None:
        check_ports(agents)
        check_unique_names(agents)
        return agents
    # Named agents are checked against every other spec that loads; a broken spec elsewhere
    # is reported when it is used, not here.
    others = []
    for other in ws.agent_names():
        if other in {a.name for a in agents}:
            continue
        try:
            others.append(load_agent(ws, other))
        except AgentManagerError:
            continue
    check_ports(agents + others)
    check_unique_names(agents + others)
    return agents


def check_ports(agents: list[Agent]) -> None:
    by_port: dict[int, Agent] = {}
    for agent in agents:
        other = by_port.get(agent.spec.port)
        if other is not None and _binds_overlap(other.spec.bind, agent.spec.bind):
            raise SpecError(
                f"{agent.path}: 'port': {agent.spec.port} is also used by {other.name} "
                f"({other.path}).",
                hint="Give each agent its own port (defaults: architect 8000, developer 8001, "
                "po 8002).",
            )
        by_port[agent.spec.port] = agent


def _binds_overlap(a: str, b: str) -> bool:
    wildcard = {"0.0.0.0", "::"}
    return a == b or a in wildcard or b in wildcard
