"""What the stand-in image borrows from the host: its Python and the system libraries.

The image holds nothing but empty folders (nothing can be pulled here); the host's Python
installation and the libraries it links against are bind-mounted read-only at the same paths.
Standard library only, so the image builder runs on any Python.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

IMAGE = "agent-manager-standin:0.33.0"
STANDIN_DIR = Path(__file__).resolve().parent
FLAG_TABLE = STANDIN_DIR.parents[1] / "src/agent_manager/data/serve-args-0.33.0.json"
# Container paths: the stand-in folder and the flag table live apart, because a file mounted
# inside a read-only folder mount would need its mount point created in the host's folder.
CONTAINER_STANDIN_DIR = "/standin"
CONTAINER_FLAG_TABLE = "/standin-flags/serve-args-0.33.0.json"
SYSTEM_LIB_DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64")
SYSTEM_FILES = ("/etc/ld.so.cache",)
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def python_prefix() -> Path:
    """The host's Python installation (not a venv): what `python3` in the container runs."""
    return Path(sys.base_prefix).resolve()


def python_bin() -> Path:
    """The prefix's bin folder, which must hold a `python3` (the entrypoint and healthcheck)."""
    bin_dir = python_prefix() / "bin"
    if not (bin_dir / "python3").exists():
        raise RuntimeError(f"{bin_dir} has no python3: the stand-in image cannot run Python")
    return bin_dir


def container_path_env() -> str:
    return f"{python_bin()}:{BASE_PATH}"


def python_mounts() -> list[str]:
    """Host paths to bind-mount read-only at the same place (Python, libraries, loader cache).

    `/usr/lib` covers a Python installed under /usr; a prefix elsewhere (pyenv, /opt, /usr/local)
    is mounted on its own. Paths that are symlinks on merged-/usr systems (/lib -> usr/lib) are
    mounted too: Docker resolves the link and the container sees the same files there.
    """
    mounts: list[str] = []
    prefix = str(python_prefix())
    if not any(prefix == d or prefix.startswith(d + "/") for d in SYSTEM_LIB_DIRS):
        mounts.append(prefix)
    if prefix == "/usr":
        mounts.append("/usr/bin")  # Debian's own python3: the stdlib is in /usr/lib already
    for candidate in (*SYSTEM_LIB_DIRS, *SYSTEM_FILES):
        if Path(candidate).exists():
            mounts.append(candidate)
    return mounts


def image_key() -> str:
    """Changes when what the image bakes in (PATH, entrypoint) would change."""
    recipe = f"{container_path_env()}|{CONTAINER_STANDIN_DIR}|v1"
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]
