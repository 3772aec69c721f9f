"""The host's own memory (psutil): level-1 sleepers keep their weights in host RAM."""

from __future__ import annotations


def available_memory_bytes() -> int | None:
    """RAM a new allocation can get without swapping (psutil's `available`); None if unknown."""
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)
