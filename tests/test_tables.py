"""Tables at 80 columns: URLs, model ids and paths stay whole; less important columns go."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent_manager.cli.fitted_table import Column, shown_columns
from tests.conftest import CliResult

Cli = Callable[..., CliResult]


def test_the_least_important_columns_go_first() -> None:
    columns = [Column("a", keep=9), Column("b", keep=1), Column("c", keep=5), Column("d", keep=1)]
    rows = [["x" * 10] * 4]
    assert shown_columns(columns, rows, 100) == [0, 1, 2, 3]
    assert shown_columns(columns, rows, 36) == [0, 1, 2]  # of two equals, the rightmost goes
    assert shown_columns(columns, rows, 23) == [0, 2]
    assert shown_columns(columns, rows, 5) == [0]  # never-dropped columns stay


@pytest.mark.parametrize("width", ["80", "60"])
def test_list_at_narrow_widths_keeps_endpoints_whole(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch, width: str
) -> None:
    monkeypatch.setenv("COLUMNS", width)
    result = cli("--home", str(workspace), "list")
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    for port in (8000, 8001, 8002):
        assert any(f"http://127.0.0.1:{port}/v1" in line for line in lines)
    if width == "80":
        assert any("Qwen/Qwen2.5-Coder-14B-Instruct-AWQ" in line for line in lines)
    assert all(len(line) <= int(width) for line in lines), lines


def test_one_broken_spec_leaves_the_others_listed(cli: Cli, workspace: Path) -> None:
    po = workspace / "agents" / "po.yaml"
    po.write_text(po.read_text().replace("\nmax_context:", "\nmax_model_len:"))
    result = cli("--home", str(workspace), "list")
    assert result.code == 2
    assert "architect" in result.stdout and "developer" in result.stdout
    assert "unknown field 'max_model_len'" in " ".join(result.stderr.split())


def test_an_unknown_key_in_the_cpu_block_is_named(cli: Cli, workspace: Path) -> None:
    po = workspace / "agents" / "po.yaml"
    po.write_text(po.read_text().replace("max_context: 8192}", "max_model_len: 8192}"))
    result = cli("--home", str(workspace), "list")
    said = " ".join(result.stderr.split())
    assert "unknown key 'max_model_len' in 'cpu'" in said
    assert "takes model, max_context and cpu_kv_cache_gib" in said


def test_plan_at_60_columns_keeps_agent_names_and_verdicts(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    result = cli("--home", str(workspace), "plan", "--gpu-memory", "16")
    assert result.code in (0, 1), result.output
    table = result.stdout.split("\n\n")[0].splitlines()
    header = next(line for line in table if "agent" in line and "needed" in line)
    assert "other" not in header  # less important columns went first
    for agent in ("architect", "developer", "po"):
        assert any(line.lstrip().startswith(agent) for line in table), table
