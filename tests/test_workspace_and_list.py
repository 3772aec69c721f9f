"""Where agents live, `list`, and `compose [--check]` as a user runs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from agent_manager.spec.workspace import resolve_workspace


def test_current_directory_with_agents_is_the_workspace(workspace: Path):
    ws = resolve_workspace(cwd=workspace)
    assert ws.root == workspace
    assert ws.source == "current directory"


def test_without_agents_the_user_config_folder_is_seeded_once(tmp_path: Path):
    ws = resolve_workspace(cwd=tmp_path)
    assert ws.root == tmp_path / "config" / "agent-manager"
    assert ws.agent_names() == ["architect", "developer", "po"]
    edited = ws.spec_path("po")
    edited.write_text(edited.read_text().replace("port: 8002", "port: 9102"))
    again = resolve_workspace(cwd=tmp_path)
    assert "port: 9102" in again.spec_path("po").read_text(), "user edits must never be overwritten"


def test_home_option_and_environment_choose_the_workspace(cli, tmp_path: Path, monkeypatch):
    assert cli("init", str(tmp_path / "mine")).code == 0
    assert cli("init", str(tmp_path / "env-home")).code == 0
    result = cli("--home", str(tmp_path / "mine"), "list", "--json")
    assert result.code == 0, result.output
    data = json.loads(result.stdout)
    assert data["workspace"] == str(tmp_path / "mine")
    assert data["workspace_source"] == "--home"
    monkeypatch.setenv("AGENT_MANAGER_HOME", str(tmp_path / "env-home"))
    data = json.loads(cli("list", "--json").stdout)
    assert data["workspace_source"] == "AGENT_MANAGER_HOME"


def test_list_shows_every_agent_and_whether_its_compose_file_is_current(cli, workspace: Path):
    result = cli("--home", str(workspace), "list")
    assert result.code == 0
    assert f"Workspace: {workspace} (--home)" in result.stdout
    for name, port in (("architect", 8000), ("developer", 8001), ("po", 8002)):
        row = next(line for line in result.stdout.splitlines() if line.startswith(name))
        assert f"http://127.0.0.1:{port}/v1" in row
        assert "missing" in row
    assert f"agent-manager --home {workspace} compose" in " ".join(result.stderr.split())

    cli("--home", str(workspace), "compose")
    data = json.loads(cli("--home", str(workspace), "list", "--json").stdout)
    po = next(a for a in data["agents"] if a["name"] == "po")
    assert po == po | {
        "model": "Qwen/Qwen2.5-7B-Instruct-AWQ",
        "served_name": "po",
        "port": 8002,
        "max_context": 32768,
        "gpu_memory_fraction": 0.9,
        "compose": "current",
        "override": False,
    }


def test_compose_writes_every_file_and_check_catches_a_stale_one(cli, workspace: Path):
    home = ("--home", str(workspace))
    assert cli(*home, "compose", "--check").code == 1
    assert cli(*home, "compose").code == 0
    assert sorted(p.name for p in (workspace / "compose").iterdir()) == [
        "docker-compose-architect.yml",
        "docker-compose-developer.yml",
        "docker-compose-po.yml",
    ]
    assert cli(*home, "compose", "--check").code == 0

    spec = workspace / "agents" / "po.yaml"
    spec.write_text(spec.read_text().replace("max_context: 32768", "max_context: 16384"))
    compose_file = workspace / "compose" / "docker-compose-po.yml"
    before = compose_file.read_text()
    result = cli(*home, "compose", "--check")
    assert result.code == 1
    assert "docker-compose-po.yml: stale" in result.stderr
    assert compose_file.read_text() == before, "--check writes nothing"

    result = cli(*home, "compose", "po")
    assert "wrote" in result.stderr and "'16384'" in compose_file.read_text()


def test_compose_never_touches_the_users_override(cli, workspace: Path):
    override = workspace / "compose" / "docker-compose-po.override.yml"
    override.write_text("services:\n  vllm:\n    environment:\n      MY_SETTING: '1'\n")
    before = (override.read_text(), os.stat(override).st_mtime_ns)
    assert cli("--home", str(workspace), "compose").code == 0
    assert (override.read_text(), os.stat(override).st_mtime_ns) == before
    data = json.loads(cli("--home", str(workspace), "list", "--json").stdout)
    assert next(a for a in data["agents"] if a["name"] == "po")["override"] is True


def test_compose_leaves_no_temporary_files_behind(cli, workspace: Path):
    cli("--home", str(workspace), "compose")
    assert [p.name for p in (workspace / "compose").iterdir() if p.name.startswith(".")] == []


def test_an_invalid_spec_stops_list_with_the_file_and_exit_2(cli, workspace: Path):
    (workspace / "agents" / "po.yaml").write_text(
        "model: Qwen/Qwen2.5-7B\nport: 8002\nswap_space: 4\n"
    )
    result = cli("--home", str(workspace), "list")
    assert result.code == 2
    assert "po.yaml:3: 'swap_space'" in result.stderr
    assert "Traceback" not in result.output
