"""The README is the user's manual: its command table must say what `--help` says."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_command_table_equals_help(cli):
    help_text = cli("--help").stdout
    commands = help_text.split("Commands:", 1)[1]
    from_help = [
        (match.group(1), match.group(2).strip())
        for match in re.finditer(r"^\s{2}(\S+)\s{2,}(.+)$", commands, flags=re.M)
    ]
    table = README.read_text().split("<!-- commands:", 1)[1].split("<!-- /commands -->", 1)[0]
    from_readme = re.findall(r"^\| `agent-manager (\S+)` \| (.+) \|$", table, flags=re.M)
    assert from_readme == from_help, "update the command table in README.md"


def test_the_readme_opens_with_the_install_and_test_commands():
    first_block = README.read_text().split("```bash", 1)[1].split("```", 1)[0]
    assert "./scripts/install.sh launch po" in first_block
    assert "./scripts/test.sh" in first_block
    assert "scripts/test.sh" in (README.parent / ".ci" / "run").read_text()
