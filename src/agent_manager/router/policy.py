"""Who gets the GPU next: the router's queue and its one switching policy.

- A request for the active agent goes straight through, unless someone waits for another
  agent: then it queues behind them (no starvation).
- Agents are served in the order of their oldest waiting request. Before a switch, the active
  agent's in-flight requests finish; past the drain limit they are cancelled (503).
- When the new agent is ready, every request queued for it is released at once.
- Guarantee: a request waits for at most one switch per agent ahead of it in the queue.

Pure asyncio: the switch, stop and "what runs" are async functions given to `Scheduler`, and
its clock is the event loop's, so tests drive it with a fake switcher on a loop whose time
jumps ahead instead of sleeping (tests/fakes/virtual_time.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from agent_manager.router.errors import Cancelled, QueueFull, SwitchFailed, WaitTimedOut

SwitchFn = Callable[[str], Awaitable[None]]
StopFn = Callable[[str], Awaitable[None]]
RunningFn = Callable[[], Awaitable[str | None]]
SwitchListener = Callable[[str, float, bool], None]  # agent, seconds, succeeded

CANCEL_GRACE_S = 5.0  # after cancelling in-flight requests, how long to wait for them to end
IDLE_SLACK_S = 0.001  # an idle clock this close to its end has ended


@dataclass(eq=False)  # each ticket is itself: hashed by identity
class Ticket:
    """An admitted request: it may talk to `agent` until released."""

    agent: str
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""
    _hooks: list[Callable[[], object]] = field(default_factory=list)

    def cancel(self, reason: str) -> None:
        self.reason = reason
        self.cancelled.set()
        for hook in self._hooks:
            hook()

    def on_cancel(self, hook: Callable[[], object]) -> None:
        """Call `hook` when the ticket is cancelled (at once if it already is)."""
        if self.cancelled.is_set():
            hook()
        else:
            self._hooks.append(hook)


@dataclass
class _Waiter:
    agent: str
    since: float
    future: asyncio.Future[Ticket]


@dataclass(frozen=True)
class SwitchRecord:
    agent: str
    seconds: float
    ok: bool
    message: str


@dataclass(frozen=True)
class Busy:
    """What the loop is doing to an agent while the core works: "switching to X" or "stopping X"."""

    action: Literal["switching to", "stopping"]
    agent: str

    def __str__(self) -> str:
        return f"{self.action} {self.agent}"


class Scheduler:
    """The queue, the active agent and the loop that switches. One per router."""

    def __init__(
        self,
        switch: SwitchFn,
        stop: StopFn,
        *,
        max_queue: int = 100,
        max_wait_s: float = 600.0,
        drain_timeout_s: float = 60.0,
        idle_stop_s: float | None = None,
        idle_for: Callable[[str], float | None] | None = None,
        on_switch: SwitchListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._switch_fn = switch
        self._stop_fn = stop
        self.max_queue = max_queue
        self.max_wait_s = max_wait_s
        self.drain_timeout_s = drain_timeout_s
        # Seconds without a request before the active agent stops; per agent (its spec).
        self.idle_for = idle_for or (lambda agent: idle_stop_s)
        self._untimed = False  # the loop waits with no idle clock: a release must wake it
        self._on_switch = on_switch
        self._clock = clock
        self.active: str | None = None
        self.busy: Busy | None = None
        self.switches = 0
        self.last_switch: SwitchRecord | None = None
        self._waiting: list[_Waiter] = []
        self._in_flight: set[Ticket] = set()
        self._generation = 0  # bumped by every change the router makes to what runs
        self._last_activity = clock()
        self._closed: str | None = None
        self._wake = asyncio.Event()
        self._released = asyncio.Event()

    # ------------------------------------------------------------------ what clients call

    async def acquire(self, agent: str) -> Ticket:
        """Admit a request for `agent`, waiting in the queue when the GPU holds another one."""
        if self._closed:
            raise Cancelled(self._closed)
        self._last_activity = self._clock()
        if agent == self.active and self.busy is None and not self._waiting:
            return self._admit(agent)
        if self.queued(agent) >= self.max_queue:
            raise QueueFull(
                f"The queue for {agent} is full ({self.max_queue} requests wait); retry later.",
                retry_after=self._retry_after(),
            )
        waiter = _Waiter(agent, self._clock(), asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        self._wake.set()
        try:
            done, _ = await asyncio.wait({waiter.future}, timeout=self.max_wait_s)
        except asyncio.CancelledError:  # the client went away while it waited
            self._forget_waiter(waiter)
            raise
        if not done:
            self._forget_waiter(waiter)
            raise WaitTimedOut(
                f"Waited {self.max_wait_s:.0f} s for {agent} (--max-wait) while the router was "
                f"{self.busy or 'serving other agents'}; retry, or raise --max-wait.",
                retry_after=self._retry_after(),
            )
        return waiter.future.result()

    def release(self, ticket: Ticket) -> None:
        if ticket in self._in_flight:
            self._in_flight.discard(ticket)
            self._last_activity = self._clock()
            self._released.set()
            if not self._in_flight and self._untimed:
                self._wake.set()  # the idle clock starts now; otherwise the loop has no news

    def forget(self, agent: str) -> None:
        """The agent refused a connection: it is not running, whatever we believed."""
        if self.active == agent and self.busy is None:
            self.active = None
            self._generation += 1

    # ------------------------------------------------------------------ what runs

    def generation(self) -> int:
        return self._generation

    def observe_running(self, agent: str | None, generation: int) -> None:
        """What Docker says runs (read when `generation` was current): a `launch` or `stop`
        typed by hand while the router runs is taken as the truth."""
        if generation == self._generation and self.busy is None and agent != self.active:
            self.active = agent
            self._generation += 1
            self._wake.set()

    async def watch(self, running: RunningFn, period_s: float) -> None:
        while True:
            generation = self._generation
            with contextlib.suppress(Exception):  # Docker hiccup: keep what we believe
                self.observe_running(await running(), generation)
            await asyncio.sleep(period_s)

    # ------------------------------------------------------------------ status

    def queued(self, agent: str) -> int:
        return sum(1 for w in self._waiting if w.agent == agent)

    def queue_depths(self) -> dict[str, int]:
        depths: dict[str, int] = {}
        for waiter in self._waiting:
            depths[waiter.agent] = depths.get(waiter.agent, 0) + 1
        return depths

    def in_flight(self) -> int:
        return len(self._in_flight)

    def idle_left(self) -> float | None:
        """Seconds until the active agent's idle stop (None: none is coming)."""
        return None if (left := self._idle_left()) is None else round(max(0.0, left), 1)

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Serve the queue forever; the only place that switches or stops an agent."""
        while True:
            self._wake.clear()
            head = self._oldest()
            if head is not None:
                await self._serve(head.agent)
                continue
            idle_left = self._idle_left()
            # A timer may fire a hair early (float clocks): then it has ended all the same.
            if idle_left is not None and idle_left <= IDLE_SLACK_S:
                await self._stop_idle()
                continue
            # A timed wait re-reads the idle clock at its end: releases need not wake it.
            self._untimed = idle_left is None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), idle_left)
            self._untimed = False

    def close(self, reason: str) -> None:
        """Shutting down: refuse new requests and answer every queued one with 503."""
        self._closed = reason
        for waiter in self._waiting:
            if not waiter.future.done():
                waiter.future.set_exception(Cancelled(reason))
        self._waiting.clear()

    def cancel_in_flight(self, reason: str) -> None:
        for ticket in list(self._in_flight):
            ticket.cancel(reason)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in flight; False if some still are after `timeout`."""
        deadline = self._clock() + timeout
        while self._in_flight:
            left = deadline - self._clock()
            if left <= 0:
                return False
            self._released.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._released.wait(), left)
        return True

    # ------------------------------------------------------------------ internals

    def _admit(self, agent: str) -> Ticket:
        ticket = Ticket(agent)
        self._in_flight.add(ticket)
        return ticket

    def _oldest(self) -> _Waiter | None:
        return min(self._waiting, key=lambda w: w.since, default=None)

    def _forget_waiter(self, waiter: _Waiter) -> None:
        if waiter in self._waiting:
            self._waiting.remove(waiter)
        if waiter.future.done() and not waiter.future.cancelled():
            if waiter.future.exception() is None:
                self.release(waiter.future.result())  # admitted just as it gave up
        else:
            waiter.future.cancel()

    def _retry_after(self) -> float:
        last = self.last_switch.seconds if self.last_switch else 0.0
        return max(1.0, round(last))

    def _idle_left(self) -> float | None:
        if self.active is None or self._in_flight:
            return None
        limit = self.idle_for(self.active)
        if limit is None:
            return None
        return limit - (self._clock() - self._last_activity)

    async def _serve(self, agent: str) -> None:
        if agent != self.active:
            drained = await self.wait_idle(self.drain_timeout_s)
            if not drained:
                self.cancel_in_flight(
                    f"Cancelled: the router switches from {self.active} to {agent} and this "
                    f"request did not finish within the drain limit ({self.drain_timeout_s:.0f} "
                    "s, --drain-timeout)."
                )
                await self.wait_idle(CANCEL_GRACE_S)
            head = self._oldest()
            if head is None or head.agent != agent:
                return  # the waiters gave up while we drained: decide again
            if not await self._switch(agent):
                return
        for waiter in [w for w in self._waiting if w.agent == agent]:
            self._waiting.remove(waiter)
            if not waiter.future.done():
                waiter.future.set_result(self._admit(agent))

    async def _switch(self, agent: str) -> bool:
        self.busy = Busy("switching to", agent)
        start = self._clock()
        try:
            await self._switch_fn(agent)
        except Exception as error:  # noqa: BLE001 - every failure becomes a 503 for its queue
            failure = (
                error
                if isinstance(error, SwitchFailed)
                else SwitchFailed(agent, str(error) or type(error).__name__, None)
            )
            # The core stops the old agent before it starts the new one: nothing is known to
            # run, unless Docker failed the switch (then the relay finds out if it answers).
            if not failure.kept:
                self.active = None
            self._record(agent, start, ok=False, message=failure.message)
            for waiter in [w for w in self._waiting if w.agent == agent]:
                self._waiting.remove(waiter)
                if not waiter.future.done():
                    waiter.future.set_exception(failure)
            return False
        else:
            self.active = agent
            self._record(agent, start, ok=True, message="ready")
            return True
        finally:
            self.busy = None
            self._generation += 1
            self._last_activity = self._clock()

    def _record(self, agent: str, start: float, *, ok: bool, message: str) -> None:
        seconds = self._clock() - start
        self.switches += 1
        self.last_switch = SwitchRecord(agent, round(seconds, 3), ok, message)
        if self._on_switch is not None:
            self._on_switch(agent, seconds, ok)

    async def _stop_idle(self) -> None:
        agent = self.active
        if agent is None:
            return
        self.busy = Busy("stopping", agent)
        try:
            await self._stop_fn(agent)
            self.active = None
        except Exception:  # noqa: BLE001 - a failed idle stop leaves the agent as it is
            self._last_activity = self._clock()
        finally:
            self.busy = None
            self._generation += 1
