"""What vLLM logs about sleep mode: the memory a sleep freed and the weights' size (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agent_manager.units import GIB

_FREED = re.compile(r"Sleep mode freed ([\d.]+) GiB memory, ([\d.]+) GiB memory is still in use")
_LOADED = re.compile(r"Model loading took ([\d.]+) GiB memory")


@dataclass(frozen=True)
class SleepMeasure:
    """vLLM's "Sleep mode freed X GiB memory, Y GiB memory is still in use." line.

    Y is the whole GPU's used memory right after the sleep (vLLM takes total − free), so it
    is this engine's remainder plus whatever else held the GPU then.
    """

    freed_bytes: int
    still_in_use_bytes: int


def parse_sleep_line(line: str) -> SleepMeasure | None:
    match = _FREED.search(line)
    if match is None:
        return None
    return SleepMeasure(int(float(match.group(1)) * GIB), int(float(match.group(2)) * GIB))


def last_sleep_measure(lines: Iterable[str]) -> SleepMeasure | None:
    found = None
    for line in lines:
        found = parse_sleep_line(line) or found
    return found


def weights_bytes_from_log(lines: Iterable[str]) -> int | None:
    """The weights' size from the startup line "Model loading took X GiB memory"."""
    found = None
    for line in lines:
        match = _LOADED.search(line)
        if match:
            found = int(float(match.group(1)) * GIB)
    return found


_BACKED_UP = re.compile(
    r"CuMemAllocator: sleep freed ([\d.]+) GiB memory in total, of which ([\d.]+) GiB is backed "
    r"up in CPU"
)


def backed_up_bytes(lines: Iterable[str]) -> int | None:
    """What the last sleep copied to host RAM, from vLLM's CuMemAllocator line (its own
    unrounded figure; PyTorch's pinned blocks hold more: plan/host_ram.py)."""
    found = None
    for line in lines:
        match = _BACKED_UP.search(line)
        if match:
            found = int(float(match.group(2)) * GIB)
    return found
