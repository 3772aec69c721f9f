"""What one switch carries from step to step, and what it hands back.

The caller gives `LaunchOptions` (what to do), `LaunchEvents` (how to talk to the user) and,
optionally, a `LaunchProgress` it reads after Ctrl-C. The switch core bundles them, with the
agent, its deadline and its timings, into one `SwitchContext` that every step receives, so no
step takes seven parameters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from agent_manager.adapters.docker import Docker
from agent_manager.diagnosis.diagnose import Failure
from agent_manager.errors import LaunchError
from agent_manager.observe.state import AgentState
from agent_manager.spec.agents import Agent, Engine
from agent_manager.spec.workspace import Workspace

DEFAULT_TIMEOUT_S = 1200.0


class LaunchTimings(BaseModel):
    """Wall-clock moments (epoch seconds) of one launch, for `--json` and the benchmark."""

    started: float
    lock_acquired: float | None = None
    old_gone: float | None = None  # the last stopped container was removed (or nothing to stop)
    up_issued: float | None = None
    up_done: float | None = None
    ready: float | None = None


class LaunchResult(BaseModel):
    agent: str
    served_name: str
    endpoint: str
    container: str | None
    ready: bool
    seconds: float  # from command start to ready (or to "started" with --no-wait)
    phase: str | None
    stopped: list[str]
    warnings: list[str]
    timings: LaunchTimings
    switch: str = "cold"  # "hot" when the agent was woken from sleep
    asleep: list[str] = []  # other agents left asleep on the GPU


class LaunchFailed(LaunchError):
    """The agent did not start; `failure` says why and what to do."""

    def __init__(self, agent: str, failure: Failure, container: str | None):
        super().__init__(failure.summary, hint=failure.fix, details=failure.matched_lines)
        self.agent = agent
        self.failure = failure
        self.container = container


@dataclass
class LaunchEvents:
    """How the switch talks to its caller; the CLI renders these, tests record them.

    `state` reports every per-agent state change (agent, old, new): the router follows the
    switch through it without polling.
    """

    message: Callable[[str], None] = lambda text: None
    warning: Callable[[str], None] = lambda text: None
    phase: Callable[[str, float], None] = lambda phase, elapsed: None
    state: Callable[[str, AgentState, AgentState], None] = lambda agent, old, new: None


@dataclass
class LaunchOptions:
    timeout: float = DEFAULT_TIMEOUT_S
    wait: bool = True
    force: bool = False
    engine: Engine | None = None  # `launch --engine`: overrides the spec's engine
    cold: bool = False  # stop the others and start cold, even `switch: sleep` ones


@dataclass
class LaunchProgress:
    """Where the launch is; the caller reads it after Ctrl-C to say what was left running."""

    agent: str
    container: str | None = None
    phase: str | None = None
    stopped: list[str] = field(default_factory=list)
    compose_started: bool = False  # from here on a container may exist
    asleep: list[str] = field(default_factory=list)  # others put or left asleep
    woke: bool = False  # the agent was woken from sleep (a hot switch)


@dataclass
class SwitchContext:
    """One switch: the target agent, the caller's options and channels, the clock, Docker."""

    ws: Workspace
    agent: Agent
    options: LaunchOptions
    events: LaunchEvents
    progress: LaunchProgress
    timings: LaunchTimings
    start: float  # time.monotonic() when the command began
    docker: Docker
    # Whether every file vLLM needs is cached: then the container starts with HF offline.
    offline: bool = False
    # Sleep-mode agents may sleep instead of stopping (not --cold, and the target fits
    # beside them).
    hot: bool = False

    @property
    def deadline(self) -> float:
        return self.start + self.options.timeout

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def set_phase(self, phase: str, seen: float | None = None) -> None:
        """Record a new startup phase and tell the caller (once per change)."""
        if phase != self.progress.phase:
            self.progress.phase = phase
            self.events.phase(phase, (seen if seen is not None else time.monotonic()) - self.start)
