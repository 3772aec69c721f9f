"""The user's private runtime folder: where a running router says where it is.

Nothing in a workspace may decide where the CLI sends a key (a cloned repository is a
workspace), so the router's state lives outside it: `$XDG_RUNTIME_DIR/agent-manager` or
`/tmp/agent-manager-<uid>`, a folder this user owns with mode 0700, one file per workspace
named by a hash of the workspace's real path, written 0600 and never through a link.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

from agent_manager.errors import UsageError


class NotPrivate(Exception):
    """The runtime folder or a file in it is not this user's alone; the message says why."""


def runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and Path(base).is_absolute():
        return Path(base) / "agent-manager"
    return Path(tempfile.gettempdir()) / f"agent-manager-{os.getuid()}"


def workspace_key(root: Path) -> str:
    return hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]


def private_dir(create: bool) -> Path:
    """The runtime folder, checked to be a real folder owned by us with mode 0700."""
    folder = runtime_dir()
    if create:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(
                f"Cannot make the router's runtime folder {folder}: {error.strerror}.",
                hint="Set XDG_RUNTIME_DIR to a folder only you can write.",
            ) from None
    try:
        check_private(folder, is_dir=True)
    except NotPrivate as why:
        if not create:
            raise
        raise UsageError(
            f"The router's runtime folder is not private: {why}.",
            hint=f"Remove {folder} (a router re-creates it), or set XDG_RUNTIME_DIR to a "
            "folder only you can write.",
        ) from None
    return folder


def check_private(path: Path, *, is_dir: bool) -> os.stat_result:
    """NotPrivate unless `path` is (not a link to) a folder/file we own that nobody else may
    read or write."""
    info = os.lstat(path)  # FileNotFoundError: none yet (no router ever ran)
    if stat.S_ISLNK(info.st_mode):
        raise NotPrivate(f"{path} is a symbolic link")
    if is_dir != stat.S_ISDIR(info.st_mode):
        raise NotPrivate(f"{path} is not a {'folder' if is_dir else 'plain file'}")
    if info.st_uid != os.getuid():
        raise NotPrivate(f"{path} belongs to another user (uid {info.st_uid})")
    if info.st_mode & 0o077:
        raise NotPrivate(f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):o})")
    return info


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` (0600) through a new temporary file and an atomic rename: a
    link or file planted at the temporary name is never written through."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_private(path: Path) -> str:
    """The text of a private file; NotPrivate if it is a link, someone else's, or readable by
    others; FileNotFoundError if there is none."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, encoding="utf-8") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise NotPrivate(f"{path} is not a plain file")
        if info.st_uid != os.getuid():
            raise NotPrivate(f"{path} belongs to another user (uid {info.st_uid})")
        if info.st_mode & 0o077:
            mode = stat.S_IMODE(info.st_mode)
            raise NotPrivate(f"{path} is open to other users (mode {mode:o})")
        return handle.read(64 * 1024)
