"""The only place that runs the `docker compose` v2 CLI (never reimplemented).

One agent is one Compose project: its generated file, then the user's override file. `up` is
started in its own session and read line by line in a thread, so a `compose up` stuck mid-pull
(output pipe open) still meets the caller's deadline, and Ctrl-C in the caller never kills it
half-way through creating a container.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Protocol

from agent_manager.adapters.containers import project_name
from agent_manager.adapters.hf_cache import hf_home
from agent_manager.errors import DockerUnavailableError
from agent_manager.fsio import write_text_atomic

CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
# Set by agent-manager when the model is complete in the local cache (see hub.py), so vLLM
# makes no network call at start; `docker compose` run by hand leaves it 0.
OFFLINE_ENV = "AGENT_MANAGER_HF_OFFLINE"


class ComposeFiles(Protocol):
    """What Compose needs of a workspace (spec/workspace.py's `Workspace`): where it lives and
    an agent's compose files, the user's override last."""

    @property
    def root(self) -> Path: ...

    def compose_files(self, agent: str) -> list[Path]: ...


def compose_command(ws: ComposeFiles, agent: str, *args: str) -> list[str]:
    """`docker compose` for one agent: its project name, its file, then the user's override."""
    files: list[str] = []
    for path in ws.compose_files(agent):
        files += ["-f", str(path)]
    return ["docker", "compose", "-p", project_name(agent), *files, *args]


def compose_env(offline: bool = False) -> dict[str, str]:
    """The environment compose interpolates the files with (HF_HOME, offline switch)."""
    env = dict(os.environ)
    env["HF_HOME"] = str(hf_home())
    env[OFFLINE_ENV] = "1" if offline else "0"
    return env


def run_compose(
    ws: ComposeFiles,
    agent: str,
    *args: str,
    offline: bool = False,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `docker compose ...` to completion, capturing output. Raises when Docker is missing."""
    ensure_compose_cli()
    return subprocess.run(
        compose_command(ws, agent, *args),
        env=compose_env(offline),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@cache
def ensure_compose_cli() -> None:
    if shutil.which("docker") is None:
        raise DockerUnavailableError(
            "The `docker` command is not installed.",
            hint="Install Docker Engine and the Compose v2 plugin "
            "(docs.docker.com/engine/install).",
        )
    probe = subprocess.run(
        ["docker", "compose", "version", "--short"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        raise DockerUnavailableError(
            "Docker Compose v2 (`docker compose`) is not available.",
            hint="Install the docker-compose-plugin package, or put the `docker-compose` v2 "
            "binary in ~/.docker/cli-plugins/.",
        )


def start_compose(
    ws: ComposeFiles, agent: str, *args: str, offline: bool = False
) -> subprocess.Popen[str]:
    """Start `docker compose ...` and return at once; its output (stdout+stderr) is a pipe."""
    ensure_compose_cli()
    return subprocess.Popen(
        compose_command(ws, agent, *args),
        env=compose_env(offline),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        # Ctrl-C must stop our follow loop, not kill a `compose up` half-way through.
        start_new_session=True,
    )


def compose_version() -> str:
    """`docker compose version --short` (e.g. "2.40.3"); raises when Compose v2 is missing."""
    ensure_compose_cli()
    probe = subprocess.run(
        ["docker", "compose", "version", "--short"], capture_output=True, text=True, check=False
    )
    return probe.stdout.strip().lstrip("v") or "unknown"


def compose_config_hash(
    ws: ComposeFiles, agent: str, service: str, offline: bool = False
) -> str | None:
    """The hash Compose would label `service`'s container with now (None if it cannot say).

    Equal to a running container's `com.docker.compose.config-hash` label exactly when
    `up -d` would leave that container alone.
    """
    done = run_compose(ws, agent, "config", "--hash", service, offline=offline, timeout=60)
    if done.returncode != 0:
        return None
    for line in done.stdout.splitlines():
        name, _, value = line.strip().partition(" ")
        if name == service and value:
            return value
    return None


_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def config_hash_matches(
    ws: ComposeFiles,
    agent: str,
    service: str,
    offline: bool,
    label: str | None,
    compute: Callable[[], str | None],
) -> bool:
    """Whether a container labelled `label` is what `up -d` would keep, cheaply.

    `docker compose config --hash` costs a Compose run (0.2-0.5 s), too much for a hot
    switch. Its answer is kept in `.agent-manager/config-hash/<agent>.json` under a key made of
    every input it depends on: the command, the files' bytes, `.env` beside them and the values
    of the variables they name. A cached hash that does not match the label is computed again
    (a Compose upgrade may hash differently), so the cache can only save time, never decide.
    """
    if label is None:
        return False
    key = _config_key(ws, agent, service, offline)
    path = ws.root / ".agent-manager" / "config-hash" / f"{agent}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if isinstance(cached, dict) and cached.get("key") == key and cached.get("hash") == label:
        return True
    wanted = compute()  # `docker compose config --hash` (the Docker seam's, so tests fake it)
    if wanted is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"key": key, "hash": wanted}) + "\n")
    return wanted is not None and wanted == label


def _config_key(ws: ComposeFiles, agent: str, service: str, offline: bool) -> str:
    digest = hashlib.sha256()
    files = ws.compose_files(agent)
    env = compose_env(offline)
    names: set[str] = set()
    for part in (*compose_command(ws, agent), service):
        digest.update(part.encode() + b"\0")
    for path in [*files, files[0].parent / ".env"]:
        try:
            data = path.read_bytes()
        except OSError:
            data = b"<missing>"
        digest.update(str(path).encode() + b"\0" + data + b"\0")
        names.update(_VARIABLE.findall(data.decode("utf-8", errors="replace")))
    for name in sorted(names):
        digest.update(f"{name}={env.get(name, '<unset>')}\0".encode())
    return digest.hexdigest()


class ComposeProcess(Protocol):
    """A started `docker compose` (a `subprocess.Popen`, or a test's fake)."""

    @property
    def stdout(self) -> IO[str] | Iterable[str] | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


@dataclass(frozen=True)
class ComposeRun:
    """How a `compose` command ended: its exit code (None: cut at the deadline), its output."""

    code: int | None
    output: list[str]


def read_until_exit(
    process: ComposeProcess, deadline: float, on_line: Callable[[str], None]
) -> ComposeRun:
    """Hand each output line to `on_line` until compose exits; kill it at `deadline`
    (time.monotonic()) and answer code None."""
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    output: list[str] = []
    code: int | None = None
    while True:
        try:
            raw = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break  # the deadline passed before compose finished
        if raw is None:  # end of output: compose is exiting
            try:
                code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            break
        line = raw.rstrip("\n")
        output.append(line)
        on_line(line)
    if code is None:
        process.kill()
    return ComposeRun(code, output)


def _pump(stream: Iterable[str], into: queue.Queue[str | None]) -> None:
    try:
        for line in stream:
            into.put(line)
    finally:
        into.put(None)
