"""The one answer to "does this agent serve?", asked by `status`, the switch, follow-until-ready
and the wake: /health answers 200 and /v1/models lists the served name. And the one look at
vLLM's /is_sleeping for a sleep-mode engine (a sleeping engine still answers /health).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_manager.adapters import http as http_adapter
from agent_manager.adapters import vllm_dev

READY = "ready"
STARTING = "starting"  # nothing answers yet, or the served name is not listed yet
UNHEALTHY = "unhealthy"  # /health answered, but not 200


@dataclass(frozen=True)
class Look:
    """One look at a server: where it is, and what /health said (for messages)."""

    state: str  # READY, STARTING or UNHEALTHY
    health: str  # /health's status code, or the name of the error when nothing answered

    @property
    def ready(self) -> bool:
        return self.state == READY


def look(url: str, api_key: str | None, served_name: str | None, timeout: float = 1.0) -> Look:
    """/health, then (once healthy) /v1/models; `served_name` None accepts any listing."""
    probe = http_adapter.probe_health(url, timeout=timeout)
    health = str(probe.status or probe.error)
    if probe.status is None:
        return Look(STARTING, health)  # not listening yet: vLLM only listens once loaded
    if not probe.healthy:
        return Look(UNHEALTHY, health)
    models = http_adapter.served_models(url, api_key, timeout=2.0)
    if models is None or (served_name is not None and served_name not in models):
        return Look(STARTING, health)
    return Look(READY, health)


def asleep(url: str, timeout: float = 2.0) -> bool | None:
    """Whether a sleep-mode engine sleeps; None when it does not answer /is_sleeping (still
    starting, or not in sleep mode)."""
    try:
        return vllm_dev.is_sleeping(url, timeout=timeout)
    except vllm_dev.DevApiError:
        return None
