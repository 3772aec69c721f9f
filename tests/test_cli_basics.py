"""The command tree and the error contract every command shares."""

from __future__ import annotations

from pathlib import Path

COMMANDS = [
    "init",
    "list",
    "compose",
    "launch",
    "stop",
    "status",
    "logs",
    "gpu-stats",
    "plan",
    "download-models",
    "chat",
    "bench",
    "doctor",
]


def test_help_lists_every_command_with_a_purpose(cli):
    result = cli("--help")
    assert result.code == 0
    for command in COMMANDS:
        lines = result.stdout.splitlines()
        line = next((ln for ln in lines if ln.strip().startswith(command + " ")), None)
        assert line is not None, f"{command} missing from --help"
        assert len(line.split()) > 1, f"{command} has no one-line purpose"
        assert not line.endswith("..."), f"{command}'s purpose is cut off: {line.strip()}"


def test_unknown_option_is_a_usage_error_with_exit_2(cli):
    result = cli("list", "--bogus")
    assert result.code == 2
    assert "No such option" in result.stderr


def test_unknown_agent_suggests_the_closest_name(cli, workspace: Path):
    result = cli("--home", str(workspace), "compose", "pp")
    assert result.code == 2
    assert "Unknown agent 'pp'" in result.stderr
    assert "Did you mean po?" in result.stderr
    assert "Traceback" not in result.output


def test_names_that_could_escape_the_workspace_are_refused(cli, workspace: Path):
    result = cli("--home", str(workspace), "compose", "../x")
    assert result.code == 2
    assert "not a valid agent name" in result.stderr
    assert not (workspace.parent / "x.yaml").exists()


def test_dev_is_accepted_for_developer(cli, workspace: Path):
    result = cli("--home", str(workspace), "compose", "dev")
    assert result.code == 0, result.output
    assert (workspace / "compose" / "docker-compose-developer.yml").is_file()


def test_help_does_not_import_heavy_libraries():
    """`agent-manager --help` stays fast: SDKs load only in the commands that use them."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from agent_manager.cli.app import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ['docker', 'huggingface_hub', 'pynvml', 'requests', 'httpx', 'yaml',"
        " 'rich.table']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "", "heavy modules imported by --help"
