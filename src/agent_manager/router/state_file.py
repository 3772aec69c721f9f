"""Where a running router says it is: `<workspace>/.agent-manager-router.json` (address and
pid), written when it starts and removed when it exits. `status` reads it, checks the pid is
alive, and asks the router itself for its active agent and queue."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent_manager.fsio import write_text_atomic
from agent_manager.spec.workspace import Workspace

FILE_NAME = ".agent-manager-router.json"


class RouterInfo(BaseModel):
    pid: int
    url: str  # http://host:port
    api_key_env: str | None = None
    started: float


class RouterView(BaseModel):
    """What `status` shows about the router."""

    url: str
    pid: int
    active: str | None = None
    queue: dict[str, int] = {}
    switches: int | None = None
    answering: bool = False


def router_file(ws: Workspace) -> Path:
    return ws.root / FILE_NAME


def write_router_file(ws: Workspace, url: str, api_key_env: str | None) -> None:
    info = RouterInfo(pid=os.getpid(), url=url, api_key_env=api_key_env, started=time.time())
    write_text_atomic(router_file(ws), info.model_dump_json() + "\n")


def remove_router_file(ws: Workspace) -> None:
    """Remove the file if it is ours (a second router may have replaced it)."""
    info = read_router_file(ws)
    if info is not None and info.pid == os.getpid():
        router_file(ws).unlink(missing_ok=True)


def read_router_file(ws: Workspace) -> RouterInfo | None:
    try:
        return RouterInfo.model_validate_json(router_file(ws).read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def router_view(ws: Workspace, timeout: float = 2.0) -> RouterView | None:
    """The router of this workspace if one runs (its pid is alive), with its live status."""
    info = read_router_file(ws)
    if info is None or not _alive(info.pid):
        return None
    view = RouterView(url=info.url, pid=info.pid)
    status = _fetch_status(info, timeout)
    if status is not None:
        view.answering = True
        view.active = status.get("active")
        view.queue = {k: v for k, v in (status.get("queue") or {}).items() if v}
        view.switches = status.get("switches")
    return view


def _fetch_status(info: RouterInfo, timeout: float) -> dict[str, Any] | None:
    import httpx

    from agent_manager.adapters.http import quick_client

    headers = {}
    key = os.environ.get(info.api_key_env) if info.api_key_env else None
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        answer = quick_client().get(f"{info.url}/router/status", headers=headers, timeout=timeout)
        data = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, json.JSONDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None
