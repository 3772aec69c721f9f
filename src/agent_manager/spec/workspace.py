"""Where agents live: the folder holding `agents/` and `compose/`, and the names in it.

Resolution order: `--home`, then `AGENT_MANAGER_HOME` (both must name an existing workspace, so
a typo never creates a new one), then the current directory if it has `agents/`, else a per-user
config folder seeded once from the packaged default specs. `agent-manager init DIR` creates one.
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


@dataclass(frozen=True)
class Workspace:
    root: Path
    source: str  # how it was chosen, shown by `list`
    # A read-only command before any workspace exists reads the packaged default specs in place.
    specs: Path | None = None

    @property
    def agents_dir(self) -> Path:
        return self.specs if self.specs is not None else self.root / "agents"

    @property
    def is_defaults_only(self) -> bool:
        return self.specs is not None

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
        override = self.override_path(agent)
        if override.is_file():
            files.append(override)
        elif override.exists() or override.is_symlink():
            raise UsageError(
                f"{override} is not a file (a folder or a broken link), so Compose cannot read "
                "the override.",
                hint="Remove it, or put your Compose override YAML in a file of that name.",
            )
        return files

    @property
    def lock_path(self) -> Path:
        return self.root / ".agent-manager.lock"

    def agent_names(self) -> list[str]:
        if not self.agents_dir.is_dir():
            return []
        return sorted(p.stem for p in self.agents_dir.glob("*.yaml") if _NAME.match(p.stem))

    def misnamed_specs(self) -> dict[Path, str]:
        """Files in agents/ that look like specs but are not read, with the name to give them.

        Only `agents/<lower-case name>.yaml` is an agent; `Coder.yml` or `my agent.yaml` would
        otherwise be ignored without a word.
        """
        if not self.agents_dir.is_dir():
            return {}
        found: dict[Path, str] = {}
        for path in sorted(self.agents_dir.iterdir()):
            if path.suffix.lower() not in (".yaml", ".yml") or path.name.startswith("."):
                continue
            if path.suffix == ".yaml" and _NAME.match(path.stem):
                continue
            stem = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-_") or "agent"
            found[path] = f"{stem[:63]}.yaml"
        return found

    def orphan_compose_files(self) -> list[Path]:
        """Generated compose files whose agent spec is gone (deleted or renamed)."""
        if not self.compose_dir.is_dir():
            return []
        names = set(self.agent_names())
        orphans = []
        for path in sorted(self.compose_dir.glob("docker-compose-*.yml")):
            stem = path.name.removeprefix("docker-compose-").removesuffix(".yml")
            if stem.endswith(".override"):
                stem = stem.removesuffix(".override")
            if stem not in names:
                orphans.append(path)
        return orphans

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
        for path, better in self.misnamed_specs().items():
            if better == f"{name}.yaml" or path.stem.lower() == name:
                raise UnknownAgentError(
                    f"Unknown agent '{name}': {path} is not read, because only "
                    "agents/<lower-case name>.yaml files are agent specs.",
                    hint=f"Rename it: mv '{path}' '{self.agents_dir / better}'",
                )
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


def user_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        home = os.environ.get("HOME")
        home = str(Path.home()) if home is None else home
        if not os.path.isabs(home):
            raise UsageError(
                f"HOME is {home!r}, not an absolute path, so there is no user config folder.",
                hint="Set HOME (or XDG_CONFIG_HOME) to an absolute path, or use --home DIR.",
            )
        base = os.path.join(home, ".config")
    return Path(base) / "agent-manager"


def default_specs_dir() -> Path:
    """The packaged default specs (the repo's `agents/` in a source checkout)."""
    packaged = Path(str(resources.files("agent_manager"))) / "default_agents"
    if packaged.is_dir():
        return packaged
    # Editable installs do not copy force-included data; fall back to the repo's own folder.
    return Path(__file__).resolve().parents[3] / "agents"


NO_WORKSPACE_SOURCE = "no workspace yet: the default agents"


def resolve_workspace(
    home: Path | None = None, cwd: Path | None = None, *, create: bool = True
) -> Workspace:
    """The workspace in use. `create=False` (read-only commands) creates nothing: not the user
    config folder, not `compose/`; without any workspace it reads the packaged default specs."""
    if home is not None:
        return _existing(home.expanduser().absolute(), "--home", create)
    env_home = os.environ.get("AGENT_MANAGER_HOME")
    if env_home:
        return _existing(Path(env_home).expanduser().absolute(), "AGENT_MANAGER_HOME", create)
    here = (cwd or Path.cwd()).resolve()
    local = here / "agents"
    if local.is_dir() or local.is_symlink() or local.exists():
        # An `agents` here that is a file or a broken link is a mistake to name, not a reason
        # to fall back silently on another workspace.
        return _checked(Workspace(here, "current directory"), create)
    config = user_config_dir()
    if not create and not (config / "agents").is_dir():
        return Workspace(config, NO_WORKSPACE_SOURCE, specs=default_specs_dir())
    if not create:
        return _checked(Workspace(config, "user config folder"), create)
    try:
        return init_workspace(config, "user config folder")
    except OSError as error:
        raise UsageError(
            f"Cannot create the default workspace {config}: {error.strerror or error}.",
            hint="Set HOME or XDG_CONFIG_HOME to a folder you can write, or choose a workspace "
            "with --home DIR (create one with `agent-manager init DIR`).",
        ) from None


def _existing(root: Path, source: str, create: bool = True) -> Workspace:
    """A workspace the user named: it must exist; a typo must not create a new one."""
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise UsageError(
            f"The workspace {root} (from {source}) {what}.",
            hint=f"Check the spelling, or create a new workspace with `agent-manager init {root}`.",
        )
    if not (root / "agents").exists() and not (root / "agents").is_symlink():
        raise UsageError(
            f"The workspace {root} (from {source}) has no agents/ folder.",
            hint=f"Create one with the default specs: `agent-manager init {root}`.",
        )
    return _checked(Workspace(root.resolve(), source), create)


def _checked(ws: Workspace, create: bool = True) -> Workspace:
    """agents/ and compose/ must be folders (compose/ is created when missing, unless the
    command only reads)."""
    for folder in (ws.agents_dir, ws.compose_dir):
        if folder.is_symlink() and not folder.exists():
            raise UsageError(
                f"{folder} is a link to {os.readlink(folder)}, which does not exist.",
                hint="Point the link at an existing folder, or remove it.",
            )
        if folder.exists() and not folder.is_dir():
            raise UsageError(
                f"{folder} is a file, but agent-manager needs a folder there.",
                hint=f"Rename or remove the file {folder}.",
            )
    if not create:
        return ws
    try:
        ws.compose_dir.mkdir(exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"Cannot create {ws.compose_dir}: {error.strerror or error}.",
            hint=f"Check the permissions of {ws.root}.",
        ) from None
    return ws


def init_workspace(root: Path, source: str = "agent-manager init") -> Workspace:
    """Create `root` with `agents/` (the default specs, never overwriting) and `compose/`."""
    agents = root / "agents"
    if not agents.is_dir():
        agents.mkdir(parents=True, exist_ok=True)
        for spec in sorted(default_specs_dir().glob("*.yaml")):
            target = agents / spec.name
            if not os.path.lexists(target):  # a link there is left alone, not written through
                shutil.copyfile(spec, target)
    return _checked(Workspace(root.resolve(), source))
