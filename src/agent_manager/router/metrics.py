"""Prometheus metrics of one router, in its own registry (no process-wide globals)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A cold switch is seconds to minutes (first start downloads and compiles).
SWITCH_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
UPSTREAM_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class RouterMetrics:
    def __init__(self, queue_depths: Callable[[], dict[str, int]], agents: Callable[[], list[str]]):
        self.registry = CollectorRegistry()
        self._queue_depths = queue_depths
        self._agents = agents
        self.requests = Counter(
            "agent_manager_router_requests",
            "Requests answered, by agent and HTTP status code.",
            ["agent", "code"],
            registry=self.registry,
        )
        self.queue = Gauge(
            "agent_manager_router_queue_depth",
            "Requests waiting for their agent.",
            ["agent"],
            registry=self.registry,
        )
        self.switches = Counter(
            "agent_manager_router_switches",
            "Switches to an agent, by outcome (ready or failed).",
            ["agent", "outcome"],
            registry=self.registry,
        )
        self.switch_seconds = Histogram(
            "agent_manager_router_switch_duration_seconds",
            "Time from the start of a switch until the agent serves (or failed).",
            buckets=SWITCH_BUCKETS,
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "agent_manager_router_upstream_latency_seconds",
            "Time from sending a request to the agent until the head of its stream, or until "
            "its whole answer when not streamed.",
            ["agent"],
            buckets=UPSTREAM_BUCKETS,
            registry=self.registry,
        )
        # `labels()` takes a lock and builds a key on every call: a tenth of a relay's own CPU
        # when called twice per request. Each (agent, code) child is looked up once.
        self._answered: dict[tuple[str, int], Any] = {}
        self._upstream: dict[str, Any] = {}

    def answered(self, agent: str, status: int) -> None:
        """One request answered with `status` ("-": no agent was named)."""
        child = self._answered.get((agent, status))
        if child is None:
            child = self._answered[(agent, status)] = self.requests.labels(agent, str(status))
        child.inc()

    def upstream(self, agent: str, seconds: float) -> None:
        """Time from sending a request to `agent` until it started its stream (or sent its
        whole answer)."""
        child = self._upstream.get(agent)
        if child is None:
            child = self._upstream[agent] = self.upstream_seconds.labels(agent)
        child.observe(seconds)

    def switched(self, agent: str, seconds: float, ok: bool) -> None:
        self.switches.labels(agent, "ready" if ok else "failed").inc()
        self.switch_seconds.observe(seconds)

    def render(self) -> bytes:
        depths = self._queue_depths()
        for agent in self._agents():
            self.queue.labels(agent).set(depths.get(agent, 0))
        return generate_latest(self.registry)
