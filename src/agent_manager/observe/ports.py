"""Is a host port free, and if not, who holds it, and what that means for an agent.

`port_verdict` is the one judgement, shared by `doctor` (which shows it) and the switch's
pre-flight (which refuses to stop anything when the new agent could not bind its port).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from agent_manager.errors import LaunchError

if TYPE_CHECKING:
    from agent_manager.adapters.docker import AgentContainer
    from agent_manager.spec.agents import Agent


class PortUse(str, Enum):
    FREE = "free"
    IN_USE = "in use"
    NOT_LOCAL = "not an address of this machine"
    PRIVILEGED = "below 1024: only root can check it"


def port_use(host: str, port: int) -> PortUse:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: only a listening socket makes bind fail, not TIME_WAIT leftovers.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRNOTAVAIL:
                return PortUse.NOT_LOCAL
            if error.errno == errno.EACCES:
                return PortUse.PRIVILEGED
            return PortUse.IN_USE
    # Docker without its userland proxy forwards a port without binding it: ask it directly.
    target = "127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host
    try:
        with socket.create_connection((target, port), timeout=0.3):
            return PortUse.IN_USE
    except OSError:
        return PortUse.FREE


def port_holders(port: int) -> list[str]:
    """Who holds the port: a container Docker knows of, else the listening processes."""
    from agent_manager.adapters import docker

    holders: list[str] = []
    try:
        holders = docker.get_docker().port_publishers(port)
    except Exception:  # noqa: BLE001 - naming the holder is best effort
        pass
    return holders or listening_processes(port)


def listening_processes(port: int, proc: Path = Path("/proc")) -> list[str]:
    """Processes listening on TCP `port`, as "pid N (name)", from /proc (best effort)."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    found = []
    for pid_dir in proc.glob("[0-9]*"):
        try:
            fds = list((pid_dir / "fd").iterdir())
        except OSError:
            continue  # gone, or another user's process
        links = set()
        for fd in fds:
            try:
                links.add(os.readlink(fd))
            except OSError:
                continue  # closed meanwhile (the listing's own fd among them)
        if any(f"socket:[{inode}]" in links for inode in inodes):
            try:
                comm = (pid_dir / "comm").read_text().strip()
            except OSError:
                comm = "?"
            found.append(f"pid {pid_dir.name} ({comm})")
    return found


@dataclass(frozen=True)
class PortVerdict:
    level: Literal["ok", "warn", "fail"]
    detail: str
    fix: str | None = None


def port_verdict(
    agent: Agent, use: PortUse, running_agent: str | None, holders: list[str]
) -> PortVerdict:
    """What `use` of the agent's port means. `running_agent`: the agent of ours whose running
    container publishes that port, if any; `holders`: who else holds it (see port_holders)."""
    spec = agent.spec
    port, bind = spec.port, spec.bind
    where = f"Port {port} on {bind} ({agent.name}'s API)"
    if use is PortUse.FREE:
        return PortVerdict("ok", f"{where} is free.")
    if use is PortUse.IN_USE and running_agent == agent.name:
        return PortVerdict("ok", f"{where} is served by agent {agent.name}, which is running.")
    if use is PortUse.IN_USE and running_agent:
        return PortVerdict(
            "fail",
            f"{where} is taken by agent {running_agent}.",
            f"Give one of them another 'port' in {agent.path}.",
        )
    if use is PortUse.IN_USE:
        who = ", ".join(holders) if holders else "another program"
        return PortVerdict(
            "fail",
            f"{where} is already in use by {who}; launching {agent.name} would fail.",
            f"Stop that program (`ss -ltnp 'sport = :{port}'` names it) or change 'port' in "
            f"{agent.path}.",
        )
    if use is PortUse.PRIVILEGED:
        # We cannot probe it unprivileged, but a root Docker daemon can publish it.
        return PortVerdict(
            "warn",
            f"{where}: ports below 1024 can only be checked as root.",
            "A root Docker daemon can still publish it; rootless Docker cannot: use a port "
            "above 1023 there.",
        )
    return PortVerdict(
        "fail",
        f"{where}: {bind} is not an address of this machine.",
        f"Set 'bind' in {agent.path} to 127.0.0.1 (this machine only) or 0.0.0.0 (all).",
    )


def preflight_port(agent: Agent, containers: Iterable[AgentContainer]) -> None:
    """Refuse (LaunchError) before anything is stopped when `agent` could not bind its port.

    A port one of our running agents publishes is no conflict: that container is either kept
    or stopped before `up`."""
    port = agent.spec.port
    if any(c.port == port and c.running for c in containers):
        return
    use = port_use(agent.spec.bind, port)
    holders = port_holders(port) if use is PortUse.IN_USE else []
    verdict = port_verdict(agent, use, None, holders)
    if verdict.level == "fail":
        raise LaunchError(verdict.detail, hint=verdict.fix)
