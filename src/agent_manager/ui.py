"""One place for output: data to stdout, progress, hints and errors to stderr.

Rich honours NO_COLOR and COLUMNS; markup is never interpreted in text that came from outside
(container logs, file contents), only in our own fixed strings.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.table import Table


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
    err().print(text, markup=False)


def hint(text: str) -> None:
    err().print(f"[dim]{_escape(text)}[/dim]")


def warn(text: str) -> None:
    err().print(f"[yellow]Warning:[/yellow] {_escape(text)}")


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
    console.print(f"[bold red]Error:[/bold red] {_escape(message)}")
    for line in details:
        console.print(f"  {line}", markup=False, highlight=False)
    if hint:
        console.print(f"[bold]{hint_label}:[/bold] {_escape(hint)}")
    if log_lines:
        console.print("[bold]Log lines:[/bold]")
        for line in log_lines:
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def success(text: str) -> None:
    err().print(f"[green]✓[/green] {_escape(text)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def stderr_is_terminal() -> bool:
    return err().is_terminal


def table(**options: Any) -> Table:
    """A table in the house style; Rich's table code is imported only when one is drawn."""
    from rich.table import Table

    return Table(show_edge=False, pad_edge=False, **options)
