"""How the command line reads: global options anywhere, the nearest command for a wrong one,
and metavars that name what to type (`AGENT`, `SECONDS`) instead of Python types.

Pure functions over argv and over the built Click tree; `app.py` applies them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import Enum

from typer._click import Command, Context
from typer._click.exceptions import UsageError
from typer.core import TyperArgument, TyperGroup, TyperOption

# Verbs people bring from Ollama and Docker, and the command that does that job here.
FAMILIAR_VERBS = {
    "ps": "status",
    "pull": "download-models",
    "run": "chat",
    "ls": "list",
    "show": "list",
    "start": "launch",
    "up": "launch",
    "down": "stop",
    "kill": "stop",
    "log": "logs",
    "top": "gpu-stats",
    "check": "doctor",
}

GLOBAL_FLAGS = ("--debug",)
GLOBAL_VALUED = ("--home",)

# What each option's value is, by option name; arguments by parameter name.
OPTION_METAVARS = {
    "--timeout": "SECONDS",
    "--max-wait": "SECONDS",
    "--drain-timeout": "SECONDS",
    "--switch-timeout": "SECONDS",
    "--gpu-memory": "GIB",
    "--port": "PORT",
    "--host": "ADDRESS",
    "--idle-stop": "DURATION",
    "--api-key-env": "VAR",
    "--max-tokens": "TOKENS",
    "--temperature": "TEMP",
    "--requests": "N",
    "--concurrency": "N",
    "--max-queue": "N",
    "--prompt-len": "WORDS",
    "--system": "TEXT",
    "--out": "FILE",
    "--home": "DIR",
    "--tail": "LINES",
    "--since": "WHEN",
}
ARGUMENT_METAVARS = {"agent": "AGENT", "agents": "AGENT", "prompt": "PROMPT", "dir": "DIR"}


def hoist_global_options(argv: Iterable[str]) -> list[str]:
    """Move `--home DIR`, `--home=DIR` and `--debug` given after a command to the front, where
    Click reads them (`agent-manager list --home X` = `agent-manager --home X list`). Nothing
    after `--` moves."""
    args = list(argv)
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif arg in GLOBAL_VALUED and i + 1 < len(args):
            front.extend(args[i : i + 2])
            i += 1
        elif any(arg.startswith(f"{name}=") for name in GLOBAL_VALUED):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def nearest_command(typed: str, commands: Iterable[str]) -> str | None:
    names = sorted(commands)
    if typed in FAMILIAR_VERBS and FAMILIAR_VERBS[typed] in names:
        return FAMILIAR_VERBS[typed]
    close = difflib.get_close_matches(typed, names, n=1, cutoff=0.6)
    if close:
        return close[0]
    starts = [name for name in names if name.startswith(typed) or typed.startswith(name)]
    return starts[0] if len(typed) >= 2 and len(starts) == 1 else None


class SuggestingGroup(TyperGroup):
    """A group whose "No such command" names the one meant (`ps` -> `status`)."""

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            meant = nearest_command(args[0], self.commands)
            if meant is not None:
                path = ctx.command_path
                raise UsageError(
                    f"No such command '{args[0]}'. Did you mean `{path} {meant}`?", ctx
                )
        return super().resolve_command(ctx, args)


def set_metavars(command: Command) -> None:
    """Readable metavars for every parameter in the tree (in place)."""
    for param in command.params:
        if param.metavar is not None:
            continue
        if isinstance(param, TyperArgument):
            param.metavar = ARGUMENT_METAVARS.get(param.name or "", (param.name or "").upper())
            _plain_argument(param)
        elif isinstance(param, TyperOption) and not param.is_flag:
            names = [*param.opts, *param.secondary_opts]
            named = next((OPTION_METAVARS[n] for n in names if n in OPTION_METAVARS), None)
            annotation = param.type_descriptor.annotation
            if isinstance(annotation, type) and issubclass(annotation, Enum):
                continue  # Typer already shows the choices: <cuda|cpu>
            param.metavar = named or (param.name or "value").upper()
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            set_metavars(sub)


def _plain_argument(param: TyperArgument) -> None:
    """Click's own look: `AGENT`, `[PROMPT]`, `[AGENT]...` in usage; no `<list[str]>` type.
    Typer 0.29 has no setting for it, so this instance's two display methods are replaced."""
    name = param.metavar or ""
    usage = name if param.required else f"[{name}]"
    if param.nargs != 1:
        usage += "..."
    setattr(param, "_usage_display_name", lambda: usage)  # noqa: B010
    setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010
