"""The whole command tree on one screen. Each command lives in its own module; heavy
libraries (docker, pynvml, huggingface_hub, requests) are imported inside command bodies so
`agent-manager --help` stays fast."""

from __future__ import annotations

import logging
import sys
from functools import cache
from pathlib import Path
from typing import Annotated

import typer
import typer.main
from typer.core import TyperGroup

from agent_manager import __version__
from agent_manager.cli import (
    doctor_cmd,
    download_cmd,
    export_cmd,
    gpu_cmd,
    runtime_cmd,
    serve_cmd,
    specs_cmd,
    use_cmd,
)
from agent_manager.cli.errors import run_cli, set_debug
from agent_manager.cli.options import set_home
from agent_manager.cli.shape import SuggestingGroup, hoist_global_options, set_metavars
from agent_manager.errors import WORKSPACE_WARNINGS

app = typer.Typer(
    name="agent-manager",
    help="Run local LLM agents (vLLM in Docker) on one NVIDIA GPU, one at a time.",
    cls=SuggestingGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agent-manager {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Workspace holding agents/ and compose/ (else AGENT_MANAGER_HOME, the current "
            "directory if it has agents/, or the user config folder).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    commands = getattr(ctx.command, "commands", {})
    set_home(home, list(commands))
    set_debug(debug)


app.command("init")(specs_cmd.init)
app.command("list")(specs_cmd.list_agents)
app.command("compose")(specs_cmd.compose)
app.command("launch")(runtime_cmd.launch)
app.command("stop")(runtime_cmd.stop)
app.command("status")(runtime_cmd.status)
app.command("logs")(runtime_cmd.logs)
app.command("gpu-stats")(gpu_cmd.gpu_stats)
app.command("plan")(gpu_cmd.plan)
app.command("download-models")(download_cmd.download_models)
app.command("chat")(use_cmd.chat)
app.command("bench")(use_cmd.bench)
app.command("doctor")(doctor_cmd.doctor)
app.command("serve")(serve_cmd.serve)
app.add_typer(export_cmd.app, name="export")


@cache
def command() -> TyperGroup:
    """The Click tree, built once, with readable metavars."""
    tree = typer.main.get_command(app)
    assert isinstance(tree, TyperGroup)
    set_metavars(tree)
    return tree


class _WarningLine(logging.Handler):
    """Warnings of the workspace's readers (a damaged record ignored) as the CLI's own
    one-line warnings; the modules that notice them know nothing of the console."""

    def emit(self, record: logging.LogRecord) -> None:
        from agent_manager import ui

        ui.warn(record.getMessage())


def _route_warnings() -> None:
    logger = logging.getLogger(WORKSPACE_WARNINGS)
    if not any(isinstance(h, _WarningLine) for h in logger.handlers):
        logger.addHandler(_WarningLine(logging.WARNING))
        logger.propagate = False


def main(argv: list[str] | None = None) -> None:
    _route_warnings()
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    run_cli(lambda: command().main(args=args, prog_name="agent-manager", standalone_mode=False))
