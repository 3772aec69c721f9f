"""`logs`: which container to read, and what `--since` means."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from agent_manager.adapters import docker as docker_adapter
from agent_manager.adapters.docker import AgentContainer
from agent_manager.errors import AgentManagerError, UsageError


def container_for_logs(agent: str) -> AgentContainer:
    """The running container of `agent`, else its most recent one (a crashed one included)."""
    mine = [c for c in docker_adapter.get_docker().list_agent_containers() if c.agent == agent]
    if not mine:
        raise AgentManagerError(
            f"{agent} has no container: it was never launched, or it was stopped and removed.",
            hint=f"Start it with `agent-manager launch {agent}`.",
        )
    return next((c for c in mine if c.running), mine[0])


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """`--since`: a duration (`30s`, `10m`, `2h`, `1d`) or a time (`2026-11-23T10:00:00`)."""
    now = time.time() if now is None else now
    match = _DURATION.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since '{text}' is neither a duration nor a time.",
            hint="Use e.g. 30s, 10m, 2h, 1d, or 2026-11-23T10:00:00.",
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # a time without zone is local time, as `docker logs` reads it
    return when.astimezone(timezone.utc).timestamp()
