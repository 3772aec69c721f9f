"""The Hugging Face cache on this host: the one module that knows its layout.

The compose files mount `${HF_HOME}` at /root/.cache/huggingface; every command that runs
`docker compose` passes the HF_HOME resolved here, so `download-models`, the `hf` CLI and the
container share one cache. In `$HF_HOME/hub/models--org--name/`, huggingface_hub keeps
`refs/<branch or tag>` (the commit it pointed at), `snapshots/<commit>/<file>` (relative links
to `blobs/<etag>`), `trees/<commit>.json` (the commit's file listing) and, under
`hub/.locks/`, one lock per blob.

Reads go through huggingface_hub's public API (`get_cached_repo_tree`,
`try_to_load_from_cache`); the listing is written by its `snapshot_download`. What the public API
cannot do lives here too: huggingface_hub deletes a partial file when a download fails, so
`fetch_blob` keeps it as `blobs/<etag>.incomplete` and resumes it with a Range request.
Paths are resolved without importing huggingface_hub (slow to import).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_REVISION = "main"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
PARTIAL_SUFFIX = ".incomplete"
# A dropped connection is retried at once while bytes keep coming; this many drops in a row
# without progress end the download (the partial file stays for the next run).
MAX_STALLED_RETRIES = 3
RETRY_DELAY_S = 1.0
# Answers the hub gives when busy (rate limit, overload): worth a retry, like a drop.
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})

OnBytes = Callable[[int], None]


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


def is_commit(revision: str | None) -> bool:
    return revision is not None and bool(_COMMIT.match(revision))


def cached_commit(model: str, revision: str | None) -> str | None:
    """The commit `revision` (default branch when None) points at in the cache; no network.

    An unreadable ref raises OSError: "unknown" is not "missing"."""
    if is_commit(revision):
        return revision
    ref = repo_folder(model) / "refs" / (revision or DEFAULT_REVISION)
    try:
        return ref.read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def record_ref(model: str, revision: str | None, commit: str) -> None:
    """Point `refs/<revision>` at `commit` before fetching, so an interrupted download is
    known to belong to this revision (huggingface_hub writes the bare id, no newline)."""
    from agent_manager.fsio import write_text_atomic

    name = revision or DEFAULT_REVISION
    if is_commit(name) or cached_commit(model, name) == commit:
        return
    write_text_atomic(repo_folder(model) / "refs" / name, commit)


def snapshot_dir(model: str, revision: str | None) -> Path | None:
    """The cached snapshot `revision` points at, if any (None when the cache is unreadable)."""
    try:
        commit = cached_commit(model, revision)
    except OSError:
        return None
    folder = repo_folder(model) / "snapshots" / commit if commit else None
    return folder if folder is not None and folder.is_dir() else None


def cached_listing(model: str, commit: str) -> dict[str, int] | None:
    """path → size of every file of the commit, from the cached listing; None if absent."""
    from huggingface_hub import get_cached_repo_tree
    from huggingface_hub.errors import CachedRepoTreeNotFoundError

    try:
        files = get_cached_repo_tree(model, revision=commit, cache_dir=hub_cache())
    except CachedRepoTreeNotFoundError:
        return None
    return {f.path: int(f.size) for f in files}


def file_cached(model: str, commit: str, path: str) -> bool:
    """The snapshot holds `path` and its blob is there (a dangling link is not a file)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(model, path, cache_dir=hub_cache(), revision=commit)
    return isinstance(found, str) and os.path.exists(found)


def blob_present(model: str, blob_name: str | None) -> bool:
    return bool(blob_name) and (repo_folder(model) / "blobs" / str(blob_name)).is_file()


def partial_bytes(model: str, blob_name: str | None) -> int:
    """Bytes of an interrupted download waiting to be resumed."""
    if not blob_name:
        return 0
    try:
        return (repo_folder(model) / "blobs" / f"{blob_name}{PARTIAL_SUFFIX}").stat().st_size
    except FileNotFoundError:
        return 0


def has_partial_blobs(model: str) -> bool:
    return any((repo_folder(model) / "blobs").glob(f"*{PARTIAL_SUFFIX}"))


def fetch_blob(
    model: str,
    commit: str,
    filename: str,
    *,
    etag: str,
    location: str,
    size: int | None,
    headers: dict[str, str],
    on_bytes: OnBytes | None = None,
) -> int:
    """Put `blobs/<etag>` (resumed from `<etag>.incomplete`) and its snapshot link in place, as
    `hf_hub_download` lays them out; return the bytes fetched. Transport and HTTP errors go up
    raw, for the hub adapter to explain."""
    from filelock import FileLock

    folder = repo_folder(model)
    blob = folder / "blobs" / etag
    fetched = 0
    if not blob.exists():
        lock = hub_cache() / ".locks" / folder.name / f"{etag}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        blob.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock)):
            if not blob.exists():
                fetched = _fetch_partial(location, blob, size, headers, on_bytes)
    _link(blob, folder / "snapshots" / commit / filename)
    return fetched


def _fetch_partial(
    location: str, blob: Path, size: int | None, headers: dict[str, str], on_bytes: OnBytes | None
) -> int:
    """Continue the partial blob from where it stopped; rename it to the blob when whole.

    A dropped connection or a busy hub (429/5xx) is retried with Range while it keeps making
    progress; after MAX_STALLED_RETRIES failures in a row the error goes up and the partial
    file stays for the next run.
    """
    partial = blob.with_name(blob.name + PARTIAL_SUFFIX)
    partial.touch()  # an empty file is whole as it is (nothing to fetch)
    fetched = 0
    failures = 0
    while True:
        have = partial.stat().st_size if partial.exists() else 0
        if size is not None and have > size:
            partial.unlink()
            have = 0
        if size is not None and have == size:
            break
        try:
            got = _stream_into(location, partial, have, headers, on_bytes)
        except _Dropped as drop:
            fetched += drop.received
            failures = 0 if drop.received else failures + 1
            if failures >= MAX_STALLED_RETRIES:
                raise drop.error from None
            time.sleep(RETRY_DELAY_S * max(failures, 1))
            continue
        fetched += got
        if size is None:
            break
    if size is not None and partial.stat().st_size != size:
        from agent_manager.errors import HubError

        raise HubError(f"{blob.name}: size differs from what the hub announced ({size} bytes).")
    os.chmod(partial, 0o644)
    os.replace(partial, blob)
    return fetched


class _Dropped(Exception):
    def __init__(self, error: Exception, received: int):
        super().__init__(str(error))
        self.error = error
        self.received = received


def _stream_into(
    location: str, partial: Path, have: int, headers: dict[str, str], on_bytes: OnBytes | None
) -> int:
    """One GET (Range from `have`), appended to `partial` chunk by chunk as it arrives."""
    import httpx2
    from huggingface_hub import constants, get_session, hf_raise_for_status
    from huggingface_hub.errors import HfHubHTTPError

    request_headers = {**headers, "Accept-Encoding": "identity"}
    if have:
        request_headers["Range"] = f"bytes={have}-"
    received = 0
    try:
        with get_session().stream(
            "GET",
            location,
            headers=request_headers,
            follow_redirects=True,
            timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
        ) as response:
            hf_raise_for_status(response)
            mode = "ab" if have and response.status_code == 206 else "wb"
            with partial.open(mode) as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
                    received += len(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status in TRANSIENT_STATUS:
            raise _Dropped(error, received) from None
        raise
    except (httpx2.TransportError, ConnectionError) as error:
        if isinstance(error, httpx2.ConnectError) and not received:
            raise
        raise _Dropped(error, received) from None
    return received


def _link(blob: Path, pointer: Path) -> None:
    """The snapshot entry: a relative symlink to the blob, as huggingface_hub makes it."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    except FileExistsError:
        pass
