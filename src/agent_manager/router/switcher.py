"""The router's one door to the switch core: `switch.core.switch_to`, the same function
`launch` runs (workspace lock, stop the other agent, wait for VRAM, ready detection,
diagnosis), in a worker thread.

What runs is read from Docker labels, never from the router's memory. An idle stop takes the
workspace lock, so it never cuts into a switch (`agent-manager stop` itself does not take it:
a user's stop wins at once).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from agent_manager.errors import AgentManagerError
from agent_manager.router.errors import SwitchFailed
from agent_manager.spec.workspace import Workspace

LOG = logging.getLogger("agent_manager.router")
T = TypeVar("T")
DOCKER_ASK_S = 3.0  # `docker version` answers in milliseconds when the engine is well
DOCKER_LOOK_S = 15.0  # the watch's listing and sleep probes


async def in_thread(work: Callable[[], T]) -> T:
    """Run blocking work in a daemon thread: on exit a half-done launch is left as it is
    (like Ctrl-C on `launch`), never waited for."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        try:
            outcome: tuple[T | None, BaseException | None] = (work(), None)
        except BaseException as error:  # noqa: BLE001 - handed to the awaiting task
            outcome = (None, error)
        try:
            loop.call_soon_threadsafe(_settle, future, *outcome)
        except RuntimeError:
            pass  # the router has exited meanwhile: nobody waits for this any more

    threading.Thread(target=run, daemon=True, name="agent-manager-switch").start()
    return await future


def _settle(future: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


class DockerSwitcher:
    """Switch, stop and "what runs" for one workspace, on the real Docker."""

    def __init__(self, ws: Workspace, timeout_s: float):
        self.ws = ws
        self._asleep: frozenset[str] = frozenset()
        self.timeout_s = timeout_s

    async def switch_to(self, agent: str) -> None:
        await self._docker_answers(agent)
        await in_thread(lambda: self._launch(agent))

    async def _docker_answers(self, agent: str) -> None:
        """Ask Docker first, briefly: a gone or hung engine fails the switch before anything
        is stopped, in seconds rather than docker-py's 30, and the running agent serves on."""
        from agent_manager.adapters.containers import DOCKER_DOWN_HINT
        from agent_manager.adapters.docker import get_docker
        from agent_manager.adapters.docker_faults import DOCKER_SILENT

        try:
            await asyncio.wait_for(in_thread(lambda: get_docker().engine_info()), DOCKER_ASK_S)
        except Exception as error:  # noqa: BLE001 - whatever docker-py raises, Docker is out
            why = (
                f"no answer in {DOCKER_ASK_S:.0f} s"
                if isinstance(error, asyncio.TimeoutError)
                else type(error).__name__
            )
            LOG.error("%s did not start: %s (%s)", agent, DOCKER_SILENT, why)
            raise SwitchFailed(
                agent, f"{DOCKER_SILENT} ({why}).", DOCKER_DOWN_HINT, kept=True
            ) from None

    def _launch(self, agent: str) -> None:
        from agent_manager.adapters.docker_faults import docker_fault, is_docker_fault
        from agent_manager.switch.context import LaunchEvents, LaunchFailed, LaunchOptions
        from agent_manager.switch.core import switch_to

        events = LaunchEvents(
            message=lambda text: LOG.info("%s: %s", agent, text),
            warning=lambda text: LOG.warning("%s: %s", agent, text),
        )
        LOG.info("switching to %s", agent)
        try:
            result = switch_to(self.ws, agent, LaunchOptions(timeout=self.timeout_s), events)
        except LaunchFailed as failed:
            LOG.error("%s did not start: %s", agent, failed.failure.summary)
            raise SwitchFailed(agent, failed.failure.summary, failed.failure.fix) from None
        except AgentManagerError as error:
            LOG.error("%s did not start: %s", agent, error.message)
            raise SwitchFailed(agent, error.message, error.hint) from None
        except Exception as error:
            if not is_docker_fault(error):
                raise
            fault = docker_fault(error)
            LOG.error("%s did not start: %s", agent, fault.message)
            raise SwitchFailed(agent, fault.message, fault.hint, kept=True) from None
        LOG.info("%s is ready in %.1f s", agent, result.seconds)

    async def stop(self, agent: str) -> None:
        await in_thread(lambda: self._stop(agent))

    def _stop(self, agent: str) -> None:
        """The idle stop: a sleep agent goes to sleep (it wakes in seconds), others stop."""
        from agent_manager.switch.hot import sleep_idle
        from agent_manager.switch.lock import workspace_lock
        from agent_manager.switch.stop import stop_agents

        try:
            with workspace_lock(
                self.ws.lock_path, agent=agent, command=f"serve (idle stop of {agent})", timeout=60
            ):
                if sleep_idle(self.ws, agent, lambda text: LOG.info("%s: %s", agent, text)):
                    LOG.info("%s is asleep (idle)", agent)
                    return
                LOG.info("stopping %s (idle)", agent)
                stop_agents(self.ws, agent)
        except AgentManagerError as error:
            LOG.error("could not stop %s: %s", agent, error.message)
            raise

    async def running(self) -> str | None:
        """Bounded: a hung Docker leaves the watch believing what it believed."""
        look = in_thread(lambda: awake_and_asleep(self.ws))
        awake, self._asleep = await asyncio.wait_for(look, DOCKER_LOOK_S)
        return awake

    def asleep(self) -> frozenset[str]:
        """The agents Docker and vLLM said were asleep at the last look (`running`)."""
        return self._asleep


def awake_and_asleep(ws: Workspace) -> tuple[str | None, frozenset[str]]:
    """The agent whose container runs awake now (None when none does), and the agents whose
    container runs but whose engine sleeps (`switch: sleep`). Read from our labels and, for
    sleep agents only, vLLM's /is_sleeping: a sleeping engine must never get requests."""
    from agent_manager.observe.state import AgentState, current_states
    from agent_manager.observe.status import serving_probe

    probe = serving_probe(ws, health=False)
    states = current_states(probe=probe)
    asleep = frozenset(a for a, now in states.items() if now.state is AgentState.ASLEEP)
    awake = [
        now
        for now in states.values()
        if now.container is not None
        and now.container.running
        and now.state is not AgentState.ASLEEP
    ]
    awake.sort(
        key=lambda now: now.container.started_at or "" if now.container else "", reverse=True
    )
    return (awake[0].agent if awake else None), asleep
