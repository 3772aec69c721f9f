"""Real `docker compose config` reads user values literally: a `$` a user wrote never pulls in
the host's environment (a token into vLLM's argv, $HOME into a path). Only the project's own
references (`${HF_TOKEN:-}`, a secret the spec passes by reference) are interpolated."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import CliResult

TOKEN = "hf_" + "HostTokenThatMustNotLeak0123456789ab"


def test_compose_interpolates_no_user_value(cli: Callable[..., CliResult], workspace: Path) -> None:
    spec = yaml.safe_load((workspace / "agents" / "po.yaml").read_text())
    spec.update(
        revision="${HF_TOKEN}",
        extra_args=["--chat-template", "$HOME/templates/chat.jinja"],
        env={"VLLM_LOGGING_PREFIX": "[$USER] ${PATH:-x}", "HF_TOKEN": "${PO_HF_TOKEN}"},
        speculative={"method": "ngram", "num_speculative_tokens": 3, "model": "$HOME"},
    )
    (workspace / "agents" / "po.yaml").write_text(yaml.safe_dump(spec))
    assert cli("--home", str(workspace), "compose", "po").code == 0

    generated = workspace / "compose" / "docker-compose-po.yml"
    service, text = _compose_config(generated)
    command = service["command"]

    assert TOKEN not in text and "/root/templates" not in text
    # `config` prints literal dollars escaped again (`$$`), so its output stays reusable.
    assert command[command.index("--revision") + 1] == "$${HF_TOKEN}"
    assert command[command.index("--chat-template") + 1] == "$$HOME/templates/chat.jinja"
    assert '"model":"$$HOME"' in command[command.index("--speculative-config") + 1]
    assert service["environment"]["VLLM_LOGGING_PREFIX"] == "[$$USER] $${PATH:-x}"
    # The one `${VAR}` the user meant: a secret passed by reference is resolved by Compose.
    assert service["environment"]["HF_TOKEN"] == "by-reference"

    # The control: the same value unescaped is what leaked the token before.
    leaky = workspace / "leaky.yml"
    leaky.write_text(generated.read_text().replace("$${HF_TOKEN}", "${HF_TOKEN}"))
    _, leaked = _compose_config(leaky)
    assert TOKEN in leaked


def _compose_config(path: Path) -> tuple[dict[str, Any], str]:
    env = {**os.environ, "HF_TOKEN": TOKEN, "PO_HF_TOKEN": "by-reference", "HOME": "/root"}
    done = subprocess.run(
        ["docker", "compose", "-f", str(path), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["services"]["vllm"], done.stdout
