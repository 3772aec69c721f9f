"""An asyncio event loop on virtual time, for tests of timing policy without real sleeps.

Whenever nothing is ready, the loop's clock jumps straight to its next timer instead of
waiting for it: `await asyncio.sleep(5)` returns at once with `loop.time()` 5 s later, and
timeouts fire in the order their deadlines say. Code under test that takes the loop's clock
(`Scheduler(clock=loop.time)`) sees the same time. Real I/O still works; only a wait with
nothing scheduled at all blocks for real (then nothing could ever wake it on virtual time).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        selector: selectors.BaseSelector = self._selector  # type: ignore[attr-defined]
        real_select = selector.select

        def select(timeout: float | None = None) -> list[Any]:
            events = real_select(0)
            if events or timeout == 0:
                return events
            if timeout is None:
                return real_select(None)
            self._now += timeout
            return events

        selector.select = select  # type: ignore[method-assign]

    def time(self) -> float:
        return self._now


def run_on_virtual_time(coroutine: Coroutine[Any, Any, T]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()
