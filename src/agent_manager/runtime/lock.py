"""One launcher at a time per workspace: an advisory `flock` on `<workspace>/.agent-manager.lock`.

The kernel drops the lock when the holder exits (even on SIGKILL), so a crashed launch never
leaves the workspace locked. The holder writes who it is into the file, so a waiting launch can
say whom it waits for.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agent_manager.errors import LaunchError

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


def read_holder(path: Path) -> LockHolder:
    """Who holds the lock, as far as the file says (it is empty between two holders)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, timeout, on_wait)
        record = {"pid": os.getpid(), "agent": agent, "command": command, "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(
    fd: int, path: Path, timeout: float, on_wait: Callable[[LockHolder], None] | None
) -> None:
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = read_holder(path)
        if not told and on_wait is not None:
            on_wait(holder)
            told = True
        if time.monotonic() >= deadline:
            raise LaunchError(
                f"Gave up after {timeout:.0f} s waiting for {holder.describe()} to finish "
                f"(workspace lock {path}).",
                hint="Wait for it to end, or stop it with Ctrl-C in its terminal; "
                "raise --timeout to wait longer.",
            )
        time.sleep(POLL_S)
