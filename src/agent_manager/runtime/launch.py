"""`launch`: the switch core under the name the CLI and older callers know.

The work itself is in `switch.py` (the switch), `follow.py` (until ready), `vram.py` (GPU
memory wait), `state.py` (per-agent states) and `context.py` (options, events, result).
"""

from __future__ import annotations

from agent_manager.runtime.context import (
    DEFAULT_TIMEOUT_S,
    LaunchEvents,
    LaunchFailed,
    LaunchOptions,
    LaunchProgress,
    LaunchResult,
    LaunchTimings,
)
from agent_manager.runtime.switch import switch_to

launch = switch_to

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "LaunchEvents",
    "LaunchFailed",
    "LaunchOptions",
    "LaunchProgress",
    "LaunchResult",
    "LaunchTimings",
    "launch",
    "switch_to",
]
