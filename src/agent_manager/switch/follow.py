"""Following a starting container until it really serves, or explaining why it never will.

Ready means /health answers 200 AND /v1/models lists the served name (vLLM answers /health a
moment before the model is registered). Meanwhile a thread reads the container's log for the
startup phase and wakes the loop at once when vLLM announces it serves or the log ends, so
readiness is noticed within one poll period and a crash is diagnosed at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import replace

from agent_manager.adapters.docker import AgentContainer, Docker
from agent_manager.diagnosis.diagnose import Context, diagnose
from agent_manager.diagnosis.phases import STARTING, announces_ready, phase_of
from agent_manager.errors import LaunchError
from agent_manager.observe import serving
from agent_manager.spec.endpoint import endpoint_for
from agent_manager.switch.context import LaunchFailed, SwitchContext
from agent_manager.switch.vram import gpu_holders

READY_POLL_S = 0.1  # /health poll period; the CLI returns within this of the server being ready
STATE_POLL_S = 0.25  # container state (a Docker API round trip) at most this often
LOG_KEEP = 2000


class LogWatcher:
    """Reads the container's log in a thread: keeps the lines, the phase, and wakes the
    follower at once when vLLM announces it is serving or when the log ends."""

    def __init__(self, docker: Docker, container_id: str, wake: threading.Event):
        self.lines: deque[str] = deque(maxlen=LOG_KEEP)
        # Every phase change with when it was seen: each is shown, even between two polls.
        self.phases: deque[tuple[str, float]] = deque()
        self.ended = threading.Event()
        self._wake = wake
        # Progress bars (weights download, shard loading) redraw with \r: each redraw is a line.
        self._stream = docker.log_stream(container_id, follow=True, split_cr=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for line in self._stream:
                self.lines.append(line)
                phase = phase_of(line)
                if phase is not None:
                    self.phases.append((phase, time.monotonic()))
                if announces_ready(line):
                    self._wake.set()
        finally:
            self.ended.set()
            self._wake.set()

    def finish(self, timeout: float) -> list[str]:
        """Wait a little for the last lines of a stopped container, then the log so far."""
        self._thread.join(timeout)
        return list(self.lines)

    def close(self) -> None:
        self._stream.close()


def follow_until_ready(ctx: SwitchContext, container: AgentContainer) -> None:
    """Return once the agent serves; LaunchFailed (diagnosed) if its container ends,
    LaunchError if it is removed meanwhile or the deadline passes (it keeps running)."""
    agent, progress = ctx.agent, ctx.progress
    endpoint = endpoint_for(agent)
    url, key = endpoint.url, endpoint.api_key  # a spec's key variable is set: checked first
    wake = threading.Event()
    watcher = LogWatcher(ctx.docker, container.id, wake)
    next_state = 0.0
    try:
        while True:
            now = time.monotonic()
            while watcher.phases:
                ctx.set_phase(*watcher.phases.popleft())
            ctx.events.phase(progress.phase or STARTING, now - ctx.start)
            if _serves(url, key, agent.served_name):
                progress.phase = "ready"
                return
            if now >= next_state or watcher.ended.is_set():
                next_state = now + STATE_POLL_S
                _check_container(ctx, container, watcher)
            if now >= ctx.deadline:
                raise LaunchError(
                    f"{agent.name} is not ready after {ctx.options.timeout:.0f} s "
                    f"(phase: {progress.phase}). Its container keeps running.",
                    hint=f"Follow it with `agent-manager logs {agent.name} -f`, or stop it with "
                    f"`agent-manager stop {agent.name}`; raise --timeout to wait longer.",
                    details=list(watcher.lines)[-10:],
                )
            wake.wait(READY_POLL_S)
            wake.clear()
    finally:
        watcher.close()


def _serves(url: str, key: str | None, served_name: str) -> bool:
    return serving.look(url, key, served_name, timeout=0.5).ready


def _check_container(ctx: SwitchContext, container: AgentContainer, watcher: LogWatcher) -> None:
    current = ctx.docker.agent_container(container.id)
    name = ctx.agent.name
    if current is None:
        raise LaunchError(
            f"The container of {name} was removed while it was starting "
            "(another `agent-manager launch` or `stop`, or `docker rm`).",
            hint=f"Launch it again with `agent-manager launch {name}`.",
        )
    if current.running:
        return
    lines = watcher.finish(timeout=2.0)
    if not lines:
        lines = ctx.docker.log_lines(current.id)
    context = Context(
        name,
        current.exit_code,
        current.state,
        max_context=ctx.agent.spec.max_context,
        spec_path=ctx.agent.path,
    )
    failure = diagnose(lines, context)
    if failure.kind == "free-memory":
        context = replace(context, gpu_holders=gpu_holders())
        failure = diagnose(lines, context)
    raise LaunchFailed(name, failure, current.name)
