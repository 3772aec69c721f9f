"""Where the Hugging Face cache lives on this host, by huggingface_hub's own rules.

The compose files mount `${HF_HOME}` at /root/.cache/huggingface; every command that runs
`docker compose` passes the HF_HOME resolved here, so `download-models`, the `hf` CLI and the
container share one cache. Resolved without importing huggingface_hub (slow to import).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def hf_home() -> Path:
    """HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface."""
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface"


def hub_cache() -> Path:
    """`$HF_HOME/hub`: the model cache the agents' containers see.

    A host-only HF_HUB_CACHE elsewhere would be invisible inside the container (it mounts
    HF_HOME), so agent-manager reads and writes models here whatever HF_HUB_CACHE says.
    """
    return hf_home() / "hub"


def repo_folder(model: str) -> Path:
    """The repo's folder in the hub cache (`models--org--name`), as huggingface_hub names it."""
    return hub_cache() / ("models--" + model.replace("/", "--"))


def snapshot_dir(model: str, revision: str | None) -> Path | None:
    """The cached snapshot `revision` (default branch: refs/main) points at, if any."""
    repo = repo_folder(model)
    rev = revision or "main"
    commit: str | None = rev if _COMMIT.match(rev) else None
    if commit is None:
        try:
            commit = (repo / "refs" / rev).read_text(encoding="utf-8").strip()
        except OSError:
            return None
    folder = repo / "snapshots" / commit
    return folder if folder.is_dir() else None
