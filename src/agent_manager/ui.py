"""One place for output: data to stdout, progress, hints and errors to stderr.

Rich honours NO_COLOR and COLUMNS; markup is never interpreted in text that came from outside
(container logs, file contents), only in our own fixed strings.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.table import Table


# `--home DIR` in use: every command we print carries it, so following a hint acts on the same
# workspace (AGENT_MANAGER_HOME needs nothing: it stays set in the user's shell).
_command_pattern: re.Pattern[str] | None = None
_home_option = ""


def set_command_home(home: str | None, commands: Sequence[str] = ()) -> None:
    global _command_pattern, _home_option
    if home is None or not commands:
        _command_pattern, _home_option = None, ""
        return
    # `init DIR` names its folder itself.
    named = sorted((name for name in commands if name != "init"), key=len, reverse=True)
    names = "|".join(re.escape(name) for name in named)
    # "written by `agent-manager export ...`" names an author, not a command to run.
    _command_pattern = re.compile(rf"(?<!by `)\bagent-manager (?=(?:{names})\b)")
    _home_option = f"agent-manager --home {shlex.quote(home)} "


def with_home(text: str) -> str:
    """`agent-manager logs po` -> `agent-manager --home DIR logs po` when --home is in use."""
    if _command_pattern is None:
        return text
    return _command_pattern.sub(lambda _: _home_option, text)


@cache
def out() -> Console:
    return Console(highlight=False, soft_wrap=False)


@cache
def err() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(data: BaseModel | dict[str, Any] | list[Any]) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else."""
    if hasattr(data, "model_dump_json"):
        text = data.model_dump_json(indent=2)
    else:
        text = json.dumps(data, indent=2, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def info(text: str) -> None:
    err().print(with_home(text), markup=False)


def hint(text: str) -> None:
    err().print(f"[dim]{_escape(with_home(text))}[/dim]")


def warn(text: str) -> None:
    err().print(f"[yellow]Warning:[/yellow] {_escape(with_home(text))}")


def error(
    message: str,
    hint: str | None = None,
    *,
    details: Sequence[str] = (),
    hint_label: str = "Hint",
    log_lines: Sequence[str] = (),
) -> None:
    """The one way a failure is shown: what went wrong, its details, what to do, and the log
    lines that show it (verbatim: markup never read in them)."""
    console = err()
    console.print(f"[bold red]Error:[/bold red] {_escape(with_home(message))}")
    for line in details:
        console.print(f"  {with_home(line)}", markup=False, highlight=False)
    if hint:
        console.print(f"[bold]{hint_label}:[/bold] {_escape(with_home(hint))}")
    if log_lines:
        console.print("[bold]Log lines:[/bold]")
        for line in log_lines:
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def success(text: str) -> None:
    err().print(f"[green]✓[/green] {_escape(with_home(text))}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def stderr_is_terminal() -> bool:
    return err().is_terminal


def table(**options: Any) -> Table:
    """A table in the house style; Rich's table code is imported only when one is drawn."""
    from rich.table import Table

    return Table(show_edge=False, pad_edge=False, **options)
