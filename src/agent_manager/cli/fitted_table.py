"""Tables that fit the terminal without breaking what people copy.

A URL, a model id or a path cut mid-token (`http://127.0.0` / `.1:8000/v1`) cannot be copied,
so such columns are never wrapped. When the table is wider than the terminal, the least
important columns are left out first (each column says how much it matters); only when the
whole columns alone are wider than the terminal does a line run past its edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent_manager import ui

if TYPE_CHECKING:
    from rich.table import Table

SEPARATOR = 3  # " ┃ " between two columns (the house table has no outer edge)


@dataclass(frozen=True)
class Column:
    name: str
    keep: int = 5  # higher stays longer when the terminal is narrow; 9: never left out
    whole: bool = False  # a URL, model id or path: never broken across lines
    justify: str = "left"


def _width(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.splitlines() or [""]), default=0)


def shown_columns(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> list[int]:
    """Indexes of the columns that fit `width`, dropping the least important (then the
    rightmost) first. Pure."""
    natural = [
        max([_width(column.name), *(_width(row[i]) for row in rows)])
        for i, column in enumerate(columns)
    ]
    shown = list(range(len(columns)))

    def total() -> int:
        return sum(natural[i] for i in shown) + SEPARATOR * (len(shown) - 1)

    while total() > width:
        droppable = [i for i in shown if columns[i].keep < 9]
        if not droppable:
            break
        shown.remove(min(droppable, key=lambda i: (columns[i].keep, -i)))
    return shown


def fitted_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None = None
) -> Table:
    width = ui.out().width if width is None else width
    shown = shown_columns(columns, rows, width)
    table = ui.table()
    for i in shown:
        column = columns[i]
        table.add_column(
            column.name,
            no_wrap=column.whole,
            overflow="ignore" if column.whole else "fold",
            justify=column.justify,  # type: ignore[arg-type]
        )
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    return table
