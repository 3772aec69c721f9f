"""Atomic file writes, and operating-system errors turned into sentences naming the path.

A reader never sees half a file, a crash never leaves one; a full disk or a read-only folder
says which path and what to do.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from agent_manager.errors import RUNTIME, USAGE, AgentManagerError


class FileAccessError(AgentManagerError):
    """Reading or writing a file failed; the message names the path and the fix."""

    def __init__(self, message: str, hint: str | None, exit_code: int):
        super().__init__(message, hint)
        self.exit_code = exit_code


def file_error(error: OSError, path: Path | str, doing: str) -> FileAccessError:
    """One sentence per kind of OS failure. Exit 2 when the user's files are in the way
    (a folder where a file should be, permissions), 1 when the machine is (disk full)."""
    code = error.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return FileAccessError(
            f"No space left to {doing} {path}: the disk (or quota) is full.",
            f"Free some space on that file system (`df -h {Path(path).parent}`) and run again; "
            "nothing was half-written.",
            RUNTIME,
        )
    if code == errno.EROFS:
        return FileAccessError(
            f"Cannot {doing} {path}: it is on a read-only file system.",
            "Use a workspace on a writable disk (--home DIR).",
            RUNTIME,
        )
    if code in (errno.EACCES, errno.EPERM):
        # Writing needs the folder (a new file is made there, then renamed); reading the file.
        look = Path(path).parent if doing == "write" else path
        return FileAccessError(
            f"Permission denied: cannot {doing} {path}.",
            f"Check the owner and mode of {look} (`ls -ld {look}`), or run as the user who "
            "owns the workspace.",
            USAGE,
        )
    if code == errno.EISDIR:
        return FileAccessError(
            f"{path} is a folder, not a file.",
            f"Move the folder {path} out of the way; agent-manager needs a file there.",
            USAGE,
        )
    if code in (errno.ENOTDIR, errno.EEXIST):
        return FileAccessError(
            f"Cannot {doing} {path}: a file stands where a folder should be on that path.",
            "Rename or remove that file so the folder can exist.",
            USAGE,
        )
    if code == errno.ENOENT:
        return FileAccessError(
            f"{path} does not exist (or is a link to nothing).",
            "Check the path; re-create it or remove the broken link.",
            USAGE,
        )
    if code == errno.ELOOP:
        # Files we write are opened with O_NOFOLLOW: ELOOP means a link stands there.
        return FileAccessError(
            f"{path} is a symbolic link; agent-manager does not write through links.",
            f"Remove the link (`rm {path}`); agent-manager re-creates the file itself.",
            USAGE,
        )
    return FileAccessError(
        f"Cannot {doing} {path}: {error.strerror or error}.",
        "Check the path, its permissions and the disk.",
        RUNTIME,
    )


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same folder and an atomic rename."""
    try:
        _write(path, text)
    except OSError as error:
        raise file_error(error, path, "write") from None


def write_text_in_place(path: Path, text: str) -> None:
    """Overwrite `path` in place (for a file others hold open, such as the lock's side
    file), never through a symbolic link: a link there is refused with a message."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise file_error(error, path, "write") from None


def refuse_link(path: Path) -> None:
    """A link where agent-manager keeps one of its own files is refused, not followed."""
    if path.is_symlink():
        raise file_error(OSError(errno.ELOOP, "link"), path, "write")


def stage_text(path: Path, text: str) -> str:
    """Write `text` to a synced temporary file beside `path`; return its name (to rename in)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _write(path: Path, text: str) -> None:
    tmp = stage_text(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
