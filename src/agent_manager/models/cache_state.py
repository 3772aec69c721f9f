"""Whether an agent's model is complete in the local Hugging Face cache — offline, in
milliseconds, from the cache folder alone.

The layout is `adapters/hf_cache.py`'s business: the commit a revision points at, the snapshot
folder, the commit's file listing (written by huggingface_hub 2.x, also for `download-models`).
"Complete" means every file vLLM needs (`model_files.select_files` over that
listing) is in the snapshot. Without a listing (a cache filled by an older tool) we fall back
to what vLLM cannot start without: config.json, a tokenizer, and every weight shard the index
names (or the single weights file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from agent_manager.adapters.hf_cache import (
    cached_commit,
    cached_listing,
    has_partial_blobs,
    repo_folder,
    snapshot_dir,
)
from agent_manager.models.selection import select_files, weights_listed_in_index
from agent_manager.spec.agents import Agent

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "tekken.json")


class CacheState(str, Enum):
    COMPLETE = "complete"  # every file vLLM needs is in the cache: start offline
    PARTIAL = "partial"
    MISSING = "missing"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CacheInfo:
    """What the cache holds for one model at one revision."""

    state: CacheState
    commit: str | None = None
    snapshot: Path | None = None
    missing: tuple[str, ...] = ()


def cache_state(agent: Agent) -> CacheState:
    """COMPLETE when the container can start this agent with HF_HUB_OFFLINE=1."""
    if agent.spec.local_model:
        # A local folder needs no hub; MISSING says the folder has no model config.
        found = (Path(agent.spec.model) / "config.json").is_file()
        return CacheState.COMPLETE if found else CacheState.MISSING
    return inspect_cache(agent.spec.model, agent.spec.revision).state


def inspect_cache(model: str, revision: str | None) -> CacheInfo:
    try:
        return _inspect(model, revision)
    except (OSError, ValueError):
        # Unreadable cache (permissions, a broken file): say so rather than guess.
        return CacheInfo(CacheState.UNKNOWN)


def _inspect(model: str, revision: str | None) -> CacheInfo:
    folder = repo_folder(model)
    if not folder.is_dir():
        return CacheInfo(CacheState.MISSING)
    commit = cached_commit(model, revision)
    snapshot = snapshot_dir(model, commit) if commit else None
    if commit is None or snapshot is None:
        # Nothing of this revision yet, unless its first file was interrupted mid-way.
        resumable = commit is not None and has_partial_blobs(model)
        return CacheInfo(CacheState.PARTIAL if resumable else CacheState.MISSING, commit=commit)
    listing = cached_listing(model, commit)
    if listing is not None:
        needed = select_files(listing).paths
    else:
        needed = _needed_without_listing(snapshot)
    missing = tuple(p for p in needed if not (snapshot / p).exists())
    state = CacheState.COMPLETE if needed and not missing else CacheState.PARTIAL
    return CacheInfo(state, commit=commit, snapshot=snapshot, missing=missing)


def _needed_without_listing(snapshot: Path) -> tuple[str, ...]:
    needed = ["config.json"]
    tokenizer = next((t for t in TOKENIZER_FILES if (snapshot / t).exists()), TOKENIZER_FILES[0])
    needed.append(tokenizer)
    for index_name, single in (
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ):
        index = snapshot / index_name
        if index.exists():
            data = json.loads(index.read_text(encoding="utf-8"))
            shards = weights_listed_in_index(data) if isinstance(data, dict) else set()
            return (*needed, index_name, *sorted(shards))
        if (snapshot / single).exists():
            return (*needed, single)
    # Weights under another name (e.g. `model-00001-of-00001.safetensors` with no index).
    weights = sorted(p.name for p in snapshot.glob("*.safetensors"))
    if not weights:
        return (*needed, "model.safetensors")
    return (*needed, *weights)
