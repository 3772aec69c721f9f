"""httpx is imported without its own command-line client (adapters/http.py): that client pulls
in click, pygments and rich's progress bars, ~40 ms of every command that talks HTTP."""

from __future__ import annotations

import subprocess
import sys


def test_httpx_works_without_loading_its_command_line_client() -> None:
    code = (
        "import sys\n"
        "import agent_manager.adapters.http as http\n"
        "import httpx\n"
        "assert httpx.Client and httpx.HTTPError\n"
        "assert http.probe_health('http://127.0.0.1:9').status is None\n"
        "loaded = sorted(m for m in ('click', 'pygments', 'rich.syntax') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
