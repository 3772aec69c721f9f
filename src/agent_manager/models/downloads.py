"""download-models: plan what each agent's model still needs, check the disk, fetch it.

Planning is one hub API call per agent (the commit a revision points at and its file sizes);
the choice of files is `selection.select_files`, what is already there comes from the cache
(`adapters/hf_cache.py`). Fetching goes through `adapters.hub.fetch_file`, which resumes partial
files (and leaves Xet-backed ones to huggingface_hub); once every file is in, huggingface_hub
records the commit's listing. One agent's failure never stops the others; the report says what
happened to each.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel

from agent_manager import units
from agent_manager.adapters import hf_cache, hub
from agent_manager.adapters.hf_cache import blob_present, file_cached, is_commit, partial_bytes
from agent_manager.errors import AgentManagerError, HubError
from agent_manager.models.cache_state import CacheState, inspect_cache
from agent_manager.models.selection import select_files
from agent_manager.spec.agents import Agent

Status = Literal["complete", "downloaded", "planned", "failed"]


class PlannedFile(BaseModel):
    path: str
    size: int
    cached: bool  # in the revision's snapshot already
    # Bytes already on disk when not in the snapshot: the whole blob (shared with another
    # revision; only a link is missing) or an interrupted download to resume.
    have_bytes: int = 0

    @property
    def remaining(self) -> int:
        return 0 if self.cached else max(self.size - self.have_bytes, 0)


class AgentDownload(BaseModel):
    """One agent's model: what it needs, what was there, what happened."""

    agent: str
    model: str
    revision: str | None
    commit: str | None = None
    status: Status
    files: list[PlannedFile] = []
    total_bytes: int = 0
    remaining_bytes: int = 0  # before this run
    fetched_bytes: int = 0
    fetched_files: int = 0
    seconds: float = 0.0
    warnings: list[str] = []
    error: str | None = None
    hint: str | None = None


class DownloadReport(BaseModel):
    cache: str
    dry_run: bool
    free_bytes: int | None = None
    fetched_bytes: int = 0
    seconds: float = 0.0
    agents: list[AgentDownload]

    @property
    def failed(self) -> list[AgentDownload]:
        return [a for a in self.agents if a.status == "failed"]


class DownloadProgress(Protocol):
    """What the CLI shows while files arrive (a Rich live view, or plain lines)."""

    def begin(self, total_bytes: int) -> None: ...
    def start_file(self, agent: str, path: str, size: int, have: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def finish_file(self, agent: str, path: str, fetched: int, seconds: float) -> None: ...
    def agent_done(self, result: AgentDownload) -> None: ...
    def end(self) -> None: ...


class SilentProgress:
    def begin(self, total_bytes: int) -> None: ...
    def start_file(self, agent: str, path: str, size: int, have: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def finish_file(self, agent: str, path: str, fetched: int, seconds: float) -> None: ...
    def agent_done(self, result: AgentDownload) -> None: ...
    def end(self) -> None: ...


class NotEnoughSpaceError(AgentManagerError):
    """The models still to download do not fit on the cache's filesystem."""


FreeSpace = Callable[[Path], int]


def disk_free(path: Path) -> int:
    """Free bytes on the filesystem that holds `path` (or would, once created)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return shutil.disk_usage("/").free


@dataclass(frozen=True)
class _Plan:
    agent: Agent
    listing: hub.RepoListing
    result: AgentDownload


def plan_agent(agent: Agent) -> AgentDownload | _Plan:
    """Ask the hub what the model's revision holds and compare with the cache.

    A pinned commit that is complete in the cache needs no network at all.
    """
    spec = agent.spec
    base = AgentDownload(
        agent=agent.name, model=spec.model, revision=spec.revision, status="planned"
    )
    if spec.local_model:
        # A local folder is mounted as it is: nothing to download.
        return _complete_from_cache(base, None)
    if is_commit(spec.revision):
        info = inspect_cache(spec.model, spec.revision)
        if info.state is CacheState.COMPLETE:
            return _complete_from_cache(base, info.commit)
    try:
        listing = hub.repo_listing(spec.model, spec.revision)
    except HubError as error:
        return _failed(base, error)
    sizes = {f.path: f for f in listing.files}
    selection = select_files(sizes)
    files = []
    for path in selection.paths:
        entry = sizes[path]
        blob = entry.lfs_sha256 or entry.blob_id
        cached = file_cached(spec.model, listing.commit, path)
        if cached:
            have = entry.size
        elif blob_present(spec.model, blob):
            have = entry.size
        else:
            have = min(partial_bytes(spec.model, blob), entry.size)
        files.append(PlannedFile(path=path, size=entry.size, cached=cached, have_bytes=have))
    warnings = [f"{spec.model} {text}" for text in selection.warnings]
    if not selection.has_weights:
        at = f"@{spec.revision}" if spec.revision else ""
        return base.model_copy(
            update={
                "commit": listing.commit,
                "status": "failed",
                "error": f"{agent.name}: {spec.model}{at} has no weights vLLM can load "
                "(no .safetensors, no .bin/.pt files).",
                "hint": "vLLM 0.33 cannot serve GGUF, ONNX or TensorFlow files; choose a repo "
                "with safetensors weights (AWQ/GPTQ/FP8 or full precision).",
            }
        )
    result = base.model_copy(
        update={
            "commit": listing.commit,
            "files": files,
            "total_bytes": sum(f.size for f in files),
            "remaining_bytes": sum(f.remaining for f in files),
            "warnings": warnings,
        }
    )
    if all(f.cached for f in files):
        result.status = "complete"
        return _Plan(agent, listing, result)
    try:
        # Before counting its bytes: a gated repo lists its files to anyone.
        hub.check_access(spec.model, listing.commit, files[0].path)
    except HubError as error:
        return _failed(result, error)
    return _Plan(agent, listing, result)


def run_downloads(
    agents: list[Agent],
    *,
    dry_run: bool = False,
    progress: DownloadProgress | None = None,
    free_space: FreeSpace | None = None,
) -> DownloadReport:
    """Plan every agent, refuse when the disk is too small, then fetch what is missing."""
    progress = progress or SilentProgress()
    cache = hub.cache_dir()
    started = time.monotonic()
    planned = [plan_agent(agent) for agent in agents]
    results = [p.result if isinstance(p, _Plan) else p for p in planned]
    if dry_run:
        return DownloadReport(cache=str(cache), dry_run=True, agents=results)
    plans = [p for p in planned if isinstance(p, _Plan) and p.result.status != "complete"]
    needed = sum(p.result.remaining_bytes for p in plans)
    free = (free_space or disk_free)(cache)
    if needed > free:
        raise _no_space(plans, needed, free, cache)
    progress.begin(needed)
    for item in planned:
        if isinstance(item, _Plan) and item.result.status != "complete":
            _fetch_agent(item, progress)
        progress.agent_done(item.result if isinstance(item, _Plan) else item)
    progress.end()
    return DownloadReport(
        cache=str(cache),
        dry_run=False,
        free_bytes=free,
        fetched_bytes=sum(r.fetched_bytes for r in results),
        seconds=time.monotonic() - started,
        agents=results,
    )


def _fetch_agent(plan: _Plan, progress: DownloadProgress) -> None:
    result = plan.result
    spec = plan.agent.spec
    started = time.monotonic()

    def on_bytes(nbytes: int) -> None:
        # Counted here, not from fetch_file's return: a dropped file still fetched bytes.
        result.fetched_bytes += nbytes
        progress.advance(nbytes)

    try:
        hf_cache.record_ref(spec.model, spec.revision, plan.listing.commit)
        for file in result.files:
            if file.cached:
                continue
            progress.start_file(result.agent, file.path, file.size, file.have_bytes)
            file_started = time.monotonic()
            before = result.fetched_bytes
            hub.fetch_file(spec.model, plan.listing.commit, file.path, on_bytes=on_bytes)
            fetched = result.fetched_bytes - before
            result.fetched_files += 1 if fetched else 0
            progress.finish_file(result.agent, file.path, fetched, time.monotonic() - file_started)
        paths = [f.path for f in result.files]
        hub.record_listing(spec.model, spec.revision, plan.listing.commit, paths)
    except HubError as error:
        failed = _failed(result, error)
        result.status, result.error, result.hint = failed.status, failed.error, failed.hint
    else:
        state = inspect_cache(spec.model, spec.revision)
        if state.state is CacheState.COMPLETE:
            result.status = "downloaded"
        else:
            result.status = "failed"
            result.error = (
                f"{result.agent}: {spec.model} is still incomplete in the cache "
                f"(missing: {', '.join(state.missing) or state.state.value})."
            )
            result.hint = "Run download-models again; if it persists, check the cache folder."
    finally:
        result.seconds = time.monotonic() - started


def _complete_from_cache(base: AgentDownload, commit: str | None) -> AgentDownload:
    return base.model_copy(update={"commit": commit, "status": "complete"})


def _failed(base: AgentDownload, error: HubError) -> AgentDownload:
    return base.model_copy(
        update={
            "status": "failed",
            "error": f"{base.agent}: {error.message}",
            "hint": error.hint,
        }
    )


def _no_space(plans: list[_Plan], needed: int, free: int, cache: Path) -> NotEnoughSpaceError:
    details = [
        f"{p.result.agent}: {p.result.model} needs {format_bytes(p.result.remaining_bytes)} more"
        for p in plans
        if p.result.remaining_bytes
    ]
    return NotEnoughSpaceError(
        f"Not enough disk space: the models need {format_bytes(needed)} ({needed:,} bytes) more, "
        f"but {cache} has only {format_bytes(free)} ({free:,} bytes) free.",
        hint=f"Free {format_bytes(needed - free)} on that filesystem, point HF_HOME at a bigger "
        "disk, or download fewer agents at a time (`agent-manager download-models <agent>`).",
        details=details,
    )


def format_bytes(count: float) -> str:
    """File sizes in decimal units, like the hub shows them."""
    return units.format_bytes(count, decimal=True)
