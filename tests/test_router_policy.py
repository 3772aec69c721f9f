"""The router's switching policy, driven by a fake switcher (no Docker, no HTTP) on an event
loop whose clock jumps ahead instead of sleeping (tests/fakes/virtual_time.py): every wait,
timeout and idle limit below takes no real time and fires in a fixed order."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from agent_manager.router.errors import Cancelled, QueueFull, SwitchFailed, WaitTimedOut
from agent_manager.router.policy import Scheduler, Ticket
from tests.fakes.switcher import FakeSwitcher
from tests.fakes.virtual_time import run_on_virtual_time


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return run_on_virtual_time(asyncio.wait_for(test(), timeout=3600))  # virtual seconds


def scheduler(switcher: FakeSwitcher, **options: Any) -> Scheduler:
    clock = asyncio.get_running_loop().time  # the loop's virtual clock
    return Scheduler(switcher.switch_to, switcher.stop, clock=clock, **options)


async def started(s: Scheduler) -> asyncio.Task[None]:
    task = asyncio.create_task(s.run())
    await asyncio.sleep(0)
    return task


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_requests_for_the_active_agent_go_straight_through():
    async def scenario() -> None:
        fake = FakeSwitcher(running_agent="po")
        s = scheduler(fake)
        s.observe_running("po", s.generation())
        task = await started(s)
        tickets = [await s.acquire("po") for _ in range(5)]
        assert s.in_flight() == 5 and fake.log == []
        task.cancel()
        assert all(t.agent == "po" for t in tickets)

    run(scenario)


def test_the_oldest_waiting_request_decides_and_its_agent_gets_all_its_queue_at_once():
    async def scenario() -> None:
        fake = FakeSwitcher(running_agent="developer")
        s = scheduler(fake)
        s.observe_running("developer", s.generation())
        busy = await s.acquire("developer")  # in flight: the switch waits for it
        task = await started(s)
        order: list[str] = []

        async def ask(agent: str) -> None:
            ticket = await s.acquire(agent)
            order.append(agent)
            await asyncio.sleep(0.01)
            s.release(ticket)

        asks = []
        for agent in ("po", "architect", "po", "po"):
            asks.append(asyncio.create_task(ask(agent)))
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.02)
        assert order == [] and fake.log == []  # nothing moves while developer drains
        s.release(busy)
        await asyncio.gather(*asks)
        assert order == ["po", "po", "po", "architect"]
        assert fake.switches == ["po", "architect"]
        task.cancel()

    run(scenario)


def test_a_request_for_the_active_agent_queues_behind_a_waiting_agent():
    async def scenario() -> None:
        fake = FakeSwitcher(running_agent="po")
        s = scheduler(fake)
        s.observe_running("po", s.generation())
        task = await started(s)
        first = await s.acquire("po")
        architect = asyncio.create_task(s.acquire("architect"))
        await settle()
        late_po = asyncio.create_task(s.acquire("po"))  # would starve architect if admitted
        await settle()
        assert not late_po.done()
        s.release(first)
        ticket = await architect
        assert ticket.agent == "architect" and not late_po.done()
        s.release(ticket)
        assert (await late_po).agent == "po"
        assert fake.switches == ["architect", "po"]
        task.cancel()

    run(scenario)


def test_no_request_waits_for_more_than_one_switch_per_agent_ahead_of_it():
    async def scenario() -> None:
        agents = ["architect", "developer", "po"]
        fake = FakeSwitcher(seconds=0.005)
        s = scheduler(fake)
        task = await started(s)
        rng = random.Random(7)
        excess: list[str] = []

        async def ask(agent: str) -> None:
            ahead = {a for a in s.queue_depths() if a != agent}  # agents with older waiters
            switches_before = len(fake.switches)
            ticket = await s.acquire(agent)
            waited_for = len(fake.switches) - switches_before
            if waited_for > len(ahead) + 1:  # +1: the switch to its own agent
                excess.append(f"{agent} waited for {waited_for} switches, {len(ahead)} ahead")
            await asyncio.sleep(rng.uniform(0, 0.004))
            s.release(ticket)

        asks = []
        for _ in range(150):
            asks.append(asyncio.create_task(ask(rng.choice(agents))))
            await asyncio.sleep(rng.uniform(0, 0.002))
        await asyncio.gather(*asks)
        assert excess == []
        task.cancel()

    run(scenario)


def test_a_full_queue_answers_429_with_retry_after():
    async def scenario() -> None:
        fake = FakeSwitcher(seconds=1.0)
        s = scheduler(fake, max_queue=2)
        waiting = [asyncio.create_task(s.acquire("po")) for _ in range(2)]
        await settle()
        with pytest.raises(QueueFull) as raised:
            await s.acquire("po")
        assert raised.value.status == 429 and raised.value.retry_after >= 1
        assert "queue for po is full" in raised.value.message
        for waiter in waiting:
            waiter.cancel()

    run(scenario)


def test_a_request_waiting_longer_than_max_wait_gets_503():
    async def scenario() -> None:
        fake = FakeSwitcher(seconds=120.0)
        s = scheduler(fake, max_wait_s=60)
        task = await started(s)
        with pytest.raises(WaitTimedOut) as raised:
            await s.acquire("po")
        assert raised.value.status == 503 and "--max-wait" in raised.value.message
        assert s.queue_depths() == {}
        task.cancel()

    run(scenario)


def test_a_failed_start_answers_every_queued_request_and_the_others_are_still_served():
    async def scenario() -> None:
        oom = ("CUDA out of memory while loading the weights.", "Lower max_context.")
        fake = FakeSwitcher(failures={"po": oom})
        s = scheduler(fake)
        task = await started(s)
        po = [asyncio.create_task(s.acquire("po")) for _ in range(3)]
        architect = asyncio.create_task(s.acquire("architect"))
        results = await asyncio.gather(*po, return_exceptions=True)
        assert all(isinstance(r, SwitchFailed) for r in results)
        assert all(r.status == 503 for r in results)
        message = results[0].message
        assert message.startswith("po did not start: CUDA out of memory")
        assert "Lower max_context." in message
        assert (await architect).agent == "architect"
        assert s.last_switch is not None and s.last_switch.ok and s.switches == 2
        task.cancel()

    run(scenario)


def test_in_flight_requests_past_the_drain_limit_are_cancelled_with_a_reason():
    async def scenario() -> None:
        fake = FakeSwitcher(running_agent="po")
        s = scheduler(fake, drain_timeout_s=0.05)
        s.observe_running("po", s.generation())
        task = await started(s)
        stuck: Ticket = await s.acquire("po")
        architect = asyncio.create_task(s.acquire("architect"))
        await asyncio.wait_for(stuck.cancelled.wait(), 1)
        assert "drain limit" in stuck.reason and "architect" in stuck.reason
        s.release(stuck)  # the relay answers 503 and lets go
        assert (await architect).agent == "architect"
        task.cancel()

    run(scenario)


def test_idle_stop_stops_the_agent_and_the_next_request_starts_it_again():
    async def scenario() -> None:
        fake = FakeSwitcher()
        s = scheduler(fake, idle_stop_s=300)  # five minutes, on the loop's virtual clock
        task = await started(s)
        s.release(await s.acquire("po"))
        await asyncio.sleep(299)
        assert fake.log == ["switch po"] and s.active == "po"
        await asyncio.sleep(2)
        assert fake.log == ["switch po", "stop po"] and s.active is None
        s.release(await s.acquire("po"))
        assert fake.switches == ["po", "po"]
        task.cancel()

    run(scenario)


def test_each_agent_idles_as_long_as_its_own_limit_and_a_busy_one_never_stops():
    async def scenario() -> None:
        fake = FakeSwitcher()
        limits = {"po": 0.05, "architect": None}  # architect: idle_minutes 0 (never)
        s = scheduler(fake, idle_for=limits.get)
        task = await started(s)
        s.release(await s.acquire("architect"))
        await asyncio.sleep(0.15)
        assert s.active == "architect" and s.idle_left() is None
        held = await s.acquire("po")  # in flight past po's limit: not idle
        await asyncio.sleep(0.15)
        assert s.active == "po" and "stop po" not in fake.log
        s.release(held)  # the idle clock starts now
        await asyncio.sleep(0.15)
        assert fake.log[-1] == "stop po" and s.active is None
        task.cancel()

    run(scenario)


def test_what_docker_says_runs_replaces_what_the_router_believed():
    async def scenario() -> None:
        fake = FakeSwitcher()
        s = scheduler(fake)
        task = await started(s)
        s.release(await s.acquire("po"))
        fake.running_agent = "architect"  # `agent-manager launch architect` typed by hand
        watch = asyncio.create_task(s.watch(fake.running, 0.01))
        await asyncio.sleep(0.05)
        assert s.active == "architect"
        s.release(await s.acquire("architect"))
        assert fake.switches == ["po"]  # no switch: architect already runs
        watch.cancel()
        task.cancel()

    run(scenario)


def test_shutdown_answers_queued_requests_and_refuses_new_ones():
    async def scenario() -> None:
        fake = FakeSwitcher(seconds=1.0)
        s = scheduler(fake)
        waiting = asyncio.create_task(s.acquire("po"))
        await settle()
        s.close("The router is shutting down.")
        with pytest.raises(Cancelled):
            await waiting
        with pytest.raises(Cancelled):
            await s.acquire("architect")

    run(scenario)
