"""The host's own memory (psutil, imported only here): the plan of a CPU agent, and level-1
sleepers, which keep their weights in host RAM."""

from __future__ import annotations


def memory_bytes() -> tuple[int, int]:
    """(total, available) RAM, as vLLM's CPU worker reads it (psutil's virtual_memory)."""
    import psutil

    memory = psutil.virtual_memory()
    return int(memory.total), int(memory.available)


def available_memory_bytes() -> int | None:
    """RAM a new allocation can get without swapping (psutil's `available`); None if unknown."""
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)
