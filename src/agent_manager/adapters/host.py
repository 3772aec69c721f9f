"""The host itself (psutil, imported only here): its memory, for the plan of a CPU agent and
level-1 sleepers (weights in host RAM); a process's start time and listening ports, the proof
`status` asks of a router before it sends a key."""

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


def process_start(pid: int) -> float | None:
    """When the process `pid` started (epoch seconds), None if there is none (or it is hidden)."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def listens_on(pid: int, port: int) -> bool:
    """Whether the process `pid` itself listens on TCP `port`."""
    import psutil

    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return False
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections
    )


def process_ids() -> list[int]:
    import psutil

    return list(psutil.pids())


def resident_bytes(pids: list[int]) -> int | None:
    """Sum of the processes' RSS; None when none of them could be read."""
    import psutil

    total, seen = 0, False
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
            seen = True
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total if seen else None
