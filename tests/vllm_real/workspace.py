"""A workspace whose agent runs the REAL vLLM server (CPU build) through its generated compose file.

The spec says `engine: cpu` and `model: <a tiny model folder>`; `agent-manager compose` renders
the compose file a user would get, and a test override (what a user's
`compose/docker-compose-<agent>.override.yml` may do) swaps only the image for the local
`agent-manager-vllm-cpu:0.32.0` and bind-mounts the system folders and the venv read-only.
The CLI runs as a user runs it: the `agent-manager` command in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.standin.process import free_port
from tests.vllm_real.engine import IMAGE, mounts, venv_dir
from tests.vllm_real.tiny_model import write_model

AGENT = "tiny"
# The served agent asks for an API key (api_key_env): passed by reference, as users do.
API_KEY_ENV = "TINY_API_KEY"
API_KEY = "tier-secret-key"
CLI = str(Path(sys.executable).parent / "agent-manager")


def spec_text(model: Path | str, port: int, **fields: object) -> str:
    """A CPU agent spec; `fields` add or replace top-level fields (values written as JSON)."""
    values: dict[str, object] = {
        "engine": "cpu",
        "model": str(model),
        "port": port,
        "max_context": 512,
        "enforce_eager": True,
        "cpu_kv_cache_gib": 1,
        **fields,
    }
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in values.items())


def override_text() -> str:
    lines = [
        "# Test override (tests/vllm_real/workspace.py): the real vLLM CPU build, imported",
        "# locally, instead of vllm/vllm-openai-cpu (nothing is pulled).",
        "services:",
        "  vllm:",
        f"    image: {IMAGE}",
        "    volumes:",
    ]
    for path in mounts(venv_dir()):
        lines += [
            "      - type: bind",
            f"        source: {json.dumps(path)}",
            f"        target: {json.dumps(path)}",
            "        read_only: true",
        ]
    return "\n".join(lines) + "\n"


@dataclass
class RealWorkspace:
    root: Path
    instance: str
    port: int

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "AGENT_MANAGER_HOME": str(self.root),
            "AGENT_MANAGER_INSTANCE": self.instance,
            "HF_HOME": str(self.root / "hf-home"),
            API_KEY_ENV: API_KEY,
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }

    def write_agent(self, name: str, text: str) -> None:
        (self.root / "agents" / f"{name}.yaml").write_text(text, encoding="utf-8")
        compose = self.root / "compose"
        compose.mkdir(exist_ok=True)
        (compose / f"docker-compose-{name}.override.yml").write_text(override_text())

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [CLI, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env(),
        )

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def new_real_workspace(tmp_path_factory: pytest.TempPathFactory, prefix: str) -> RealWorkspace:
    """A fresh workspace with the tiny model, after checking what scripts/test.sh builds."""
    if not (venv_dir() / ".agent-manager-ready").is_file():
        pytest.fail(f"the vLLM CPU venv {venv_dir()} is missing; run ./scripts/test.sh")
    image = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False)
    if image.returncode != 0:
        pytest.fail(f"the image {IMAGE} is missing; run ./scripts/test.sh")
    root = tmp_path_factory.mktemp(prefix)
    (root / "agents").mkdir()
    write_model(root / "models" / "tiny-qwen2")
    return RealWorkspace(root, f"amvllm-{uuid.uuid4().hex[:8]}", free_port())
