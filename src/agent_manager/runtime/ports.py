"""Is a host port free, and if not, who holds it. Shared by `launch`'s pre-flight and `doctor`."""

from __future__ import annotations

import errno
import os
import socket
from enum import Enum
from pathlib import Path


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
        holders = docker.port_publishers(port)
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
