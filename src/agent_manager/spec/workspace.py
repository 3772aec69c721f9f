"""Where agents live: the folder holding `agents/` and `compose/`, and the names in it.

Resolution order: `--home`, then `AGENT_MANAGER_HOME`, then the current directory if it has
`agents/`, else a per-user config folder seeded once from the packaged default specs.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from agent_manager.errors import UnknownAgentError, UsageError

# Short names people type for the default agents.
ALIASES = {"dev": "developer", "arch": "architect"}

# A name becomes a file stem and a Docker project name: keep it to what both accept.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

INSTANCE_ENV = "AGENT_MANAGER_INSTANCE"
DEFAULT_INSTANCE = "agent-manager"


@dataclass(frozen=True)
class Workspace:
    root: Path
    source: str  # how it was chosen, shown by `list`

    @property
    def agents_dir(self) -> Path:
        return self.root / "agents"

    @property
    def compose_dir(self) -> Path:
        return self.root / "compose"

    def spec_path(self, agent: str) -> Path:
        return self.agents_dir / f"{agent}.yaml"

    def compose_path(self, agent: str) -> Path:
        return self.compose_dir / f"docker-compose-{agent}.yml"

    def override_path(self, agent: str) -> Path:
        return self.compose_dir / f"docker-compose-{agent}.override.yml"

    def compose_files(self, agent: str) -> list[Path]:
        """The files `docker compose -f` gets: the generated one, then the user's override."""
        files = [self.compose_path(agent)]
        if self.override_path(agent).is_file():
            files.append(self.override_path(agent))
        return files

    @property
    def lock_path(self) -> Path:
        return self.root / ".agent-manager.lock"

    def agent_names(self) -> list[str]:
        if not self.agents_dir.is_dir():
            return []
        return sorted(p.stem for p in self.agents_dir.glob("*.yaml") if _NAME.match(p.stem))

    def resolve_agent(self, name: str) -> str:
        """Map what the user typed to an agent name, or explain why it is not one."""
        check_agent_name(name)
        known = self.agent_names()
        if name in known:
            return name
        alias = ALIASES.get(name)
        if alias in known:
            return alias
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"Did you mean {close[0]}?" if close else None
        listing = ", ".join(known) if known else "none"
        raise UnknownAgentError(
            f"Unknown agent '{name}' (agents in {self.agents_dir}: {listing}).",
            hint=hint or f"Create {self.agents_dir / (name + '.yaml')} to add it.",
        )

    def resolve_agents(self, names: list[str] | None) -> list[str]:
        """All agents when none are named, else each named one resolved, without repeats."""
        if not names:
            return self.agent_names()
        resolved: list[str] = []
        for name in names:
            agent = self.resolve_agent(name)
            if agent not in resolved:
                resolved.append(agent)
        return resolved


def check_agent_name(name: str) -> None:
    """Refuse names that could escape `agents/` or `compose/` or that Docker would reject."""
    if not _NAME.match(name):
        raise UsageError(
            f"'{name}' is not a valid agent name.",
            hint="Use lower-case letters, digits, '-' and '_' (no '/', '..' or spaces).",
        )


def instance_name() -> str:
    """Prefix of the Compose project names this tool manages (`<instance>-<agent>`).

    Every command of one instance sees the same containers; tests use their own instance so
    they never touch a user's agents.
    """
    value = os.environ.get(INSTANCE_ENV, DEFAULT_INSTANCE)
    if not _NAME.match(value):
        raise UsageError(f"{INSTANCE_ENV}='{value}' is not a valid Compose project prefix.")
    return value


def project_name(agent: str) -> str:
    return f"{instance_name()}-{agent}"


def user_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "agent-manager"


def default_specs_dir() -> Path:
    """The packaged default specs (the repo's `agents/` in a source checkout)."""
    packaged = Path(str(resources.files("agent_manager"))) / "default_agents"
    if packaged.is_dir():
        return packaged
    # Editable installs do not copy force-included data; fall back to the repo's own folder.
    return Path(__file__).resolve().parents[3] / "agents"


def resolve_workspace(home: Path | None = None, cwd: Path | None = None) -> Workspace:
    if home is not None:
        return _seeded(home.expanduser().resolve(), "--home")
    env_home = os.environ.get("AGENT_MANAGER_HOME")
    if env_home:
        return _seeded(Path(env_home).expanduser().resolve(), "AGENT_MANAGER_HOME")
    here = (cwd or Path.cwd()).resolve()
    if (here / "agents").is_dir():
        return Workspace(here, "current directory")
    return _seeded(user_config_dir(), "user config folder")


def _seeded(root: Path, source: str) -> Workspace:
    """Use `root`, copying the default specs in if it has no `agents/` yet (never overwriting)."""
    agents = root / "agents"
    if not agents.is_dir():
        agents.mkdir(parents=True, exist_ok=True)
        for spec in sorted(default_specs_dir().glob("*.yaml")):
            target = agents / spec.name
            if not target.exists():
                shutil.copyfile(spec, target)
    (root / "compose").mkdir(exist_ok=True)
    return Workspace(root, source)
