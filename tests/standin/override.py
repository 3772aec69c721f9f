"""Write the test override that turns a generated compose file into a stand-in container.

This is exactly what a user's `compose/docker-compose-<agent>.override.yml` may do: swap the
image, drop the GPU reservation with `deploy: !reset {}`, add mounts and environment. The
generated `command:`, `ports:`, `labels:` and healthcheck stay as generated, so the real argv
reaches the stand-in (which exits 2 on any flag vLLM 0.33.0 would refuse).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.standin.host_python import (
    CONTAINER_FLAG_TABLE,
    CONTAINER_STANDIN_DIR,
    FLAG_TABLE,
    IMAGE,
    STANDIN_DIR,
    python_mounts,
)

DEFAULT_SERVICE = "vllm"
# Docker tests stay fast: half a second of "loading" still shows the not-listening phase.
DEFAULT_ENV = {"STANDIN_LOAD_SECONDS": "0.5"}


def _services(compose_file: Path) -> list[str]:
    if not compose_file.is_file():
        return [DEFAULT_SERVICE]
    data = yaml.safe_load(compose_file.read_text(encoding="utf-8")) or {}
    return sorted(data.get("services") or {}) or [DEFAULT_SERVICE]


def _bind(source: str | Path, target: str) -> list[str]:
    return [
        "      - type: bind",
        f"        source: {json.dumps(str(source))}",
        f"        target: {json.dumps(target)}",
        "        read_only: true",
    ]


def override_text(services: list[str], env: dict[str, str] | None = None) -> str:
    environment = {"STANDIN_FLAGS": CONTAINER_FLAG_TABLE, **DEFAULT_ENV, **(env or {})}
    lines = [
        "# Test override (tests/standin/override.py): the vLLM stand-in instead of vLLM.",
        "services:",
    ]
    for service in services:
        lines += [
            f"  {json.dumps(service)}:",
            f"    image: {IMAGE}",
            "    deploy: !reset {}",
            "    volumes:",
        ]
        for path in python_mounts():
            lines += _bind(path, path)
        lines += _bind(STANDIN_DIR, CONTAINER_STANDIN_DIR)
        lines += _bind(FLAG_TABLE, CONTAINER_FLAG_TABLE)
        lines.append("    environment:")
        for key, value in sorted(environment.items()):
            lines.append(f"      {key}: {json.dumps(str(value))}")
    return "\n".join(lines) + "\n"


def write_test_override(ws_root: Path, agent: str, env: dict[str, str] | None = None) -> Path:
    """Write `compose/docker-compose-<agent>.override.yml` under `ws_root`; return its path.

    `env` adds or replaces stand-in knobs (STANDIN_LOAD_SECONDS, STANDIN_FAIL, ...) and any
    other container environment. Call it again to change them; it rewrites the whole file.
    """
    compose_dir = Path(ws_root) / "compose"
    compose_dir.mkdir(parents=True, exist_ok=True)
    services = _services(compose_dir / f"docker-compose-{agent}.yml")
    path = compose_dir / f"docker-compose-{agent}.override.yml"
    path.write_text(override_text(services, env), encoding="utf-8")
    return path
