"""One launcher at a time per workspace: a `filelock` on `<workspace>/.agent-manager.lock`.

The kernel drops the lock when the holder exits (even on SIGKILL), so a crashed launch never
leaves the workspace locked. The holder writes who it is into a side file
(`.agent-manager.lock.holder`: the lock file is filelock's own, and 3.x truncates it on open), so a
waiting launch can say whom it waits for.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agent_manager.errors import LaunchError
from agent_manager.fsio import refuse_link, write_text_in_place

POLL_S = 0.05


@dataclass(frozen=True)
class LockHolder:
    pid: int | None
    agent: str | None
    command: str | None
    since: float | None

    def describe(self) -> str:
        if self.pid is None:
            return "another agent-manager command"
        what = f"`agent-manager {self.command}`" if self.command else "agent-manager"
        if self.agent:
            what += f" for {self.agent}"
        return f"{what} (pid {self.pid})"


def holder_path(lock: Path) -> Path:
    """The side file naming the lock's holder."""
    return lock.with_name(lock.name + ".holder")


def read_holder(lock: Path) -> LockHolder:
    """Who holds the lock, as far as the side file says (it is empty between two holders)."""
    try:
        data = json.loads(holder_path(lock).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid = data.get("pid")
    return LockHolder(
        pid=pid if isinstance(pid, int) else None,
        agent=data.get("agent"),
        command=data.get("command"),
        since=data.get("since"),
    )


@contextmanager
def workspace_lock(
    path: Path,
    *,
    agent: str,
    command: str,
    timeout: float,
    on_wait: Callable[[LockHolder], None] | None = None,
) -> Iterator[None]:
    """Hold the workspace lock for the `with` body; wait up to `timeout` seconds for it.

    `on_wait` is called once, with the holder, when the lock is busy.
    """
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    note = holder_path(path)
    refuse_link(path)
    refuse_link(note)
    lock = FileLock(str(path), mode=0o644)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait(read_holder(path))
        try:
            lock.acquire(timeout=timeout, poll_interval=POLL_S)
        except Timeout:
            raise LaunchError(
                f"Gave up after {timeout:.0f} s waiting for {read_holder(path).describe()} to "
                f"finish (workspace lock {path}).",
                hint="Wait for it to end, or stop it with Ctrl-C in its terminal; "
                "raise --timeout to wait longer.",
            ) from None
    try:
        record = {"pid": os.getpid(), "agent": agent, "command": command, "since": time.time()}
        write_text_in_place(note, json.dumps(record))
        yield
    finally:
        try:
            write_text_in_place(note, "")
        finally:
            lock.release()
