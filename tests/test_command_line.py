"""How the command line reads: global options anywhere, the nearest command for a wrong one,
readable help, and hints that keep the workspace in use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent_manager.cli.shape import hoist_global_options
from tests.conftest import CliResult

Cli = Callable[..., CliResult]


def test_home_after_the_command_is_the_same_as_before_it(cli: Cli, workspace: Path) -> None:
    before = cli("--home", str(workspace), "list", "--json")
    after = cli("list", "--json", "--home", str(workspace))
    equals = cli("list", f"--home={workspace}", "--json")
    assert before.code == after.code == equals.code == 0
    assert before.stdout == after.stdout == equals.stdout


def test_debug_anywhere_and_nothing_after_a_double_dash_moves() -> None:
    assert hoist_global_options(["plan", "po", "--debug"]) == ["--debug", "plan", "po"]
    assert hoist_global_options(["chat", "po", "--", "--home", "x"]) == [
        "chat",
        "po",
        "--",
        "--home",
        "x",
    ]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("ps", "status"), ("pull", "download-models"), ("run", "chat"), ("lst", "list")],
)
def test_an_unknown_command_names_the_nearest_one(cli: Cli, typed: str, meant: str) -> None:
    result = cli(typed)
    assert result.code == 2
    assert f"No such command '{typed}'. Did you mean `agent-manager {meant}`?" in result.stderr


def test_help_names_what_to_type_not_python_types(cli: Cli) -> None:
    for command in ("plan", "chat", "bench", "serve", "launch", "download-models", "logs"):
        text = cli(command, "--help").stdout
        assert "<list[str]>" not in text and "range>" not in text and "<str>" not in text
    assert "Usage: agent-manager plan [OPTIONS] [AGENT]..." in cli("plan", "--help").stdout
    assert "--gpu-memory GIB" in cli("plan", "--help").stdout
    assert "--timeout SECONDS" in cli("launch", "--help").stdout


def test_shell_completion_can_be_installed(cli: Cli) -> None:
    assert "--install-completion" in cli("--help").stdout


def test_hints_carry_the_home_in_use(cli: Cli, workspace: Path) -> None:
    result = cli("list", "--home", str(workspace))
    said = " ".join(result.stderr.split())
    assert f"`agent-manager --home {workspace} compose`" in said


def test_read_only_commands_create_no_workspace(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "config" / "agent-manager"
    for argv in (("list",), ("plan", "--gpu-memory", "24"), ("compose", "--check"), ("doctor",)):
        result = cli(*argv)
        assert "Unexpected error" not in result.output
        assert not config.exists(), f"{argv} created {config}"
    result = cli("list")
    assert result.code == 0
    assert "architect" in result.stdout and "po" in result.stdout
    assert f"`agent-manager init {config}`" in " ".join(result.stderr.split())


def test_a_writing_command_seeds_the_user_workspace(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "config" / "agent-manager"
    assert cli("compose", "po").code == 0
    assert (config / "agents" / "po.yaml").is_file()
    assert (config / "compose" / "docker-compose-po.yml").is_file()
