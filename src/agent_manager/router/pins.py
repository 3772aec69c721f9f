"""Response ids pinned to the agent that made them.

vLLM keeps a `/v1/responses` result in the serving process's memory: `GET /v1/responses/{id}`
and `.../cancel` must reach that same agent, and once it was stopped (a cold switch away, an
idle stop) the id is gone for good, which the router says in a 404 instead of switching.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_PINS = 10_000  # the oldest are forgotten first
_ID = re.compile(rb'"id"\s*:\s*"(resp_[A-Za-z0-9_-]{1,200})"')
_CARRY = 256  # bytes kept from one chunk to the next, so an id split across chunks is found


@dataclass(frozen=True)
class Pin:
    agent: str
    epoch: int  # the agent's start count when the response was made


class ResponsePins:
    def __init__(self, limit: int = MAX_PINS):
        self._pins: OrderedDict[str, Pin] = OrderedDict()
        self._limit = limit

    def pin(self, response_id: str, pin: Pin) -> None:
        self._pins[response_id] = pin
        self._pins.move_to_end(response_id)
        while len(self._pins) > self._limit:
            self._pins.popitem(last=False)

    def get(self, response_id: str) -> Pin | None:
        return self._pins.get(response_id)


class IdSniffer:
    """Fed the response body chunk by chunk; calls `found` with the first response id it
    sees (the `response.created` event of a stream, the `id` of a whole answer)."""

    def __init__(self, found: Callable[[str], None]):
        self._found = found
        self._tail = b""
        self._done = False

    def __call__(self, chunk: bytes) -> None:
        if self._done:
            return
        text = self._tail + chunk
        match = _ID.search(text)
        if match:
            self._done = True
            self._found(match.group(1).decode())
        else:
            self._tail = text[-_CARRY:]
