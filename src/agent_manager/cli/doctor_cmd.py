"""`doctor`: check this machine can serve the agents, and say how to fix what it cannot."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from agent_manager import ui
from agent_manager.cli.options import JsonOpt, workspace

if TYPE_CHECKING:
    from agent_manager.doctor.verdicts import DoctorReport

_STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red"}


def doctor(json_output: JsonOpt = False) -> None:
    """Check this machine is ready to run agents.

    Checks Docker, Compose, the GPU runtime, driver, VRAM, disk, token, ports and specs.

    Every check says OK, WARN or FAIL and, when not OK, how to fix it. Exits 1 if any check
    FAILs.
    """
    from agent_manager.doctor.checks import all_checks, run_checks
    from agent_manager.doctor.cpu import cpu_checks

    ws = workspace()
    report = run_checks(ws, all_checks(ws) + cpu_checks())
    if json_output:
        ui.print_json(report)
    else:
        _render(report)
    if not report.ok:
        raise typer.Exit(1)


def _render(report: DoctorReport) -> None:
    table = ui.table(show_header=True)
    table.add_column("status")
    table.add_column("check")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        status = check.status.value
        detail = escape(check.detail)
        if check.fix:
            detail += f"\n[dim]fix: {escape(check.fix)}[/dim]"
        table.add_row(f"[{_STYLE[status]}]{status}[/]", check.name, detail)
    ui.out().print(table)
    summary = f"{report.failed} failed, {report.warned} warning(s)"
    if report.failed:
        ui.err().print(f"[bold red]{summary}[/bold red]: fix the FAIL lines before launching.")
    elif report.warned:
        ui.err().print(f"{summary}: the agents can run; see the WARN lines.")
    else:
        ui.success("Everything needed to serve the agents is in place.")
