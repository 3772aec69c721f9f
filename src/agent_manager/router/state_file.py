"""Where a running router says it is, and the proof `status` asks before it sends a key.

The router writes `router-<workspace hash>.json` (address, pid, start time) into the user's
private runtime folder (`runtime_dir.py`) when it starts, and removes it when it exits, only if
it is still its own. It holds `router-<hash>.lock` while it runs, so a second `serve` on the
same workspace refuses and names the first.

`status` believes the file only if the folder and file are this user's alone, the pid is alive
and started when the file says, the address is loopback, and that very process listens on that
port; then, and only then, it sends the router's key there. Anything else is ignored with one
line of warning. A file in the workspace is never read for this.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent_manager.adapters import host as host_adapter
from agent_manager.errors import UsageError
from agent_manager.router.runtime_dir import (
    NotPrivate,
    private_dir,
    read_private,
    workspace_key,
    write_private,
)
from agent_manager.spec.workspace import Workspace

LEGACY_FILE = ".agent-manager-router.json"  # where routers before 0.x wrote it: never read
START_SLACK_S = 1.0
Warn = Callable[[str], None]


class RouterInfo(BaseModel):
    pid: int
    port: int
    host: str  # as bound
    workspace: str
    api_key_env: str | None = None
    started: float  # the process's start time, as the kernel reports it

    @property
    def url(self) -> str:
        """Where the CLI reaches it: loopback when it listens on every interface."""
        from agent_manager.adapters.http import base_url

        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return base_url(host, self.port)

    @property
    def loopback(self) -> bool:
        from agent_manager.router.config import is_loopback

        return is_loopback(self.url.split("//", 1)[1].rsplit(":", 1)[0])


class RouterView(BaseModel):
    """What `status` shows about the router."""

    url: str
    pid: int
    active: str | None = None
    queue: dict[str, int] = {}
    switches: int | None = None
    answering: bool = False
    idle_stop_s: float | None = None  # the active agent stops (or sleeps) after this idle time
    idle_left_s: float | None = None  # ... of which this much is left (None: in use)


def router_file(ws: Workspace, create: bool = False) -> Path:
    return private_dir(create) / f"router-{workspace_key(ws.root)}.json"


@contextmanager
def router_claim(ws: Workspace, host: str, port: int, api_key_env: str | None) -> Iterator[None]:
    """Hold this workspace's router lock and state file for the `with` body; UsageError
    naming the running router if another one holds it."""
    from filelock import FileLock, Timeout

    path = router_file(ws, create=True)
    lock = FileLock(str(path.with_suffix(".lock")), mode=0o600)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        other = _read(path)
        who = f"at {other.url}/v1 (pid {other.pid})" if other else "(its address is not known)"
        raise UsageError(
            f"A router already serves this workspace {who}.",
            hint="Use that one, or stop it (Ctrl-C in its terminal) before starting another.",
        ) from None
    try:
        started = host_adapter.process_start(os.getpid()) or 0.0
        info = RouterInfo(
            pid=os.getpid(),
            port=port,
            host=host,
            workspace=str(ws.root.resolve()),
            api_key_env=api_key_env,
            started=started,
        )
        write_private(path, info.model_dump_json() + "\n")
        yield
    finally:
        mine = _read(path)
        if mine is not None and mine.pid == os.getpid():
            path.unlink(missing_ok=True)
        lock.release()


def _read(path: Path) -> RouterInfo | None:
    try:
        return RouterInfo.model_validate_json(read_private(path))
    except (OSError, NotPrivate, ValidationError, ValueError):
        return None


def find_router(ws: Workspace, warn: Warn) -> RouterInfo | None:
    """This workspace's router, if one runs and proves it is the one the file names."""
    legacy = ws.root / LEGACY_FILE
    if legacy.exists() or legacy.is_symlink():
        warn(f"Ignored {legacy}: the router's address is never read from the workspace.")
    try:
        path = router_file(ws)
        info = RouterInfo.model_validate_json(read_private(path))
    except FileNotFoundError:
        return None
    except NotPrivate as why:
        warn(f"Ignored the router state: {why}.")
        return None
    except (OSError, ValidationError, ValueError) as error:
        warn(f"Ignored the router state {path}: {type(error).__name__}.")
        return None
    problem = _disproof(info, ws)
    if problem is None:
        return info
    if problem:  # empty: a router that exited without cleaning up, nothing to say
        warn(f"Ignored the router state {path}: {problem}.")
    return None


def _disproof(info: RouterInfo, ws: Workspace) -> str | None:
    """Why the file cannot be believed ('' when it is simply stale), or None."""
    if info.workspace != str(ws.root.resolve()):
        return f"it names another workspace ({info.workspace})"
    started = host_adapter.process_start(info.pid)
    if started is None or abs(started - info.started) > START_SLACK_S:
        return ""
    if not host_adapter.listens_on(info.pid, info.port):
        return f"pid {info.pid} does not listen on port {info.port}"
    return None


def router_view(ws: Workspace, warn: Warn, timeout: float = 2.0) -> RouterView | None:
    """The router of this workspace if one runs, with its live status."""
    info = find_router(ws, warn)
    if info is None:
        return None
    url = info.url
    view = RouterView(url=url, pid=info.pid)
    # The key goes only to loopback, to the port the router's own process was seen to listen on.
    key_env = info.api_key_env if info.loopback else None
    status = _fetch_status(url, key_env, timeout)
    if status is not None:
        view.answering = True
        view.active = status.get("active")
        view.queue = {k: v for k, v in (status.get("queue") or {}).items() if v}
        view.switches = status.get("switches")
        idle = status.get("idle") or {}
        view.idle_stop_s = idle.get("after_s")
        view.idle_left_s = idle.get("left_s")
    return view


def _fetch_status(url: str, api_key_env: str | None, timeout: float) -> dict[str, Any] | None:
    import httpx

    headers = {}
    key = os.environ.get(api_key_env) if api_key_env else None
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        # trust_env off: a proxy variable must not carry the key off this machine.
        answer = httpx.get(
            f"{url}/router/status", headers=headers, timeout=timeout, trust_env=False
        )
        data = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return data if isinstance(data, dict) else None
