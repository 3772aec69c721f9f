"""The only module that talks to the Hugging Face hub (and imports huggingface_hub).

huggingface_hub reads HF_ENDPOINT and HF_HOME once, when it is imported; we resolve both at call
time (`endpoint()`, `cache_dir()`) and pass them explicitly, so tests and users that
set them late still get what they asked for. The token follows huggingface_hub's own rules
(HF_TOKEN, then the token file of `hf auth login`).

Every hub failure leaves as a `HubError` subclass whose message names the repo and whose hint
says what to do; callers add the agent name.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent_manager import __version__
from agent_manager.errors import HubError
from agent_manager.models.cache_layout import hub_cache, repo_folder

if TYPE_CHECKING:
    from huggingface_hub import HfApi

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_REVISION = "main"
TREE_FORMAT_VERSION = 1  # huggingface_hub 2.x `trees/<commit>.json` listing format
# A dropped connection is retried at once while bytes keep coming; this many drops in a row
# without progress end the download (the partial file stays for the next run).
MAX_STALLED_RETRIES = 3
RETRY_DELAY_S = 1.0
# Answers the hub gives when busy (rate limit, overload): worth a retry, like a drop.
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
DEFAULT_TIMEOUT_S = 10.0


class GatedRepoError(HubError):
    """The repo is gated and this token (or no token) has not been granted access."""


class RepoNotFoundError(HubError):
    """No such repo, or a private one the token cannot see."""


class RevisionNotFoundError(HubError):
    """The repo exists but the branch, tag or commit does not."""


class FileNotOnHubError(HubError):
    """The repo and revision exist but the file does not."""


class BadTokenError(HubError):
    """The hub refused the token itself (401 invalid credentials)."""


class HubUnreachableError(HubError):
    """No answer from the hub: network down, DNS, proxy, timeout, or HF_HUB_OFFLINE."""


@dataclass(frozen=True)
class RepoFile:
    """One file of a repo at a revision, as the hub lists it."""

    path: str
    size: int
    blob_id: str | None = None
    lfs_sha256: str | None = None


@dataclass(frozen=True)
class RepoListing:
    """Every file of a repo at one commit (what `revision` resolved to)."""

    model: str
    revision: str | None
    commit: str
    files: tuple[RepoFile, ...]


def request_timeout() -> float:
    """Seconds any metadata call may wait for the hub: HF_HUB_ETAG_TIMEOUT (default 10).

    Read at call time (huggingface_hub reads it once at import) and always passed explicitly:
    its session has no timeout of its own, so a hub that accepts the connection and never
    answers would hang `plan`, launch's fit check and `download-models --dry-run` for ever.
    """
    raw = os.environ.get("HF_HUB_ETAG_TIMEOUT", "")
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if 0 < value < 3600 else DEFAULT_TIMEOUT_S


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def is_commit(revision: str | None) -> bool:
    return revision is not None and bool(_COMMIT.match(revision))


def cache_dir() -> Path:
    """Where downloads go: `$HF_HOME/hub`, the cache the containers mount (see hf_cache)."""
    return hub_cache()


def has_token() -> bool:
    from huggingface_hub import get_token

    return get_token() is not None


def repo_files(model: str, revision: str | None) -> list[RepoFile]:
    """Every file of `model` at `revision` (default branch when None) with its size in bytes."""
    return list(repo_listing(model, revision).files)


def repo_listing(model: str, revision: str | None) -> RepoListing:
    """Ask the hub (one API call) for the commit `revision` points at and its files."""
    with translate_errors(model, revision):
        info = _api().model_info(
            model, revision=revision, files_metadata=True, timeout=request_timeout()
        )
    if not info.sha:
        raise HubError(
            f"The hub at {endpoint()} answered for {model} without a commit id.",
            hint="Check HF_ENDPOINT: it must point at a Hugging Face hub (or a faithful mirror).",
        )
    files = tuple(
        RepoFile(
            path=sibling.rfilename,
            size=int(
                sibling.size if sibling.size is not None else sibling.lfs.size if sibling.lfs else 0
            ),
            blob_id=sibling.blob_id,
            lfs_sha256=sibling.lfs.sha256 if sibling.lfs else None,
        )
        for sibling in info.siblings or []
    )
    return RepoListing(model=model, revision=revision, commit=info.sha, files=files)


def download_file(model: str, revision: str | None, filename: str) -> Path:
    """One (small) file into the hub cache, standard layout; its path in the snapshot.

    Falls back to the cached copy when the hub cannot be reached, like huggingface_hub does.
    """
    from huggingface_hub import hf_hub_download

    with translate_errors(model, revision, filename):
        path = hf_hub_download(
            model,
            filename,
            revision=revision,
            cache_dir=cache_dir(),
            endpoint=endpoint(),
            etag_timeout=request_timeout(),
            library_name="agent-manager",
            library_version=__version__,
        )
    return Path(str(path))


def check_access(model: str, commit: str, filename: str) -> None:
    """One HEAD request: can this token download files of the repo? (Gated repos list their
    files to anyone but refuse the downloads.)"""
    from huggingface_hub.file_download import get_hf_file_metadata, hf_hub_url

    base = endpoint()
    with translate_errors(model, commit, filename):
        get_hf_file_metadata(
            hf_hub_url(model, filename, revision=commit, endpoint=base),
            timeout=request_timeout(),
            endpoint=base,
            library_name="agent-manager",
            library_version=__version__,
        )


def record_listing(listing: RepoListing) -> None:
    """Store the listing where huggingface_hub 2.x keeps it (`trees/<commit>.json`) and point
    `refs/<revision>` at the commit, so the cache says offline what this revision holds."""
    folder = repo_folder(listing.model)
    tree = folder / "trees" / f"{listing.commit}.json"
    entries: dict[str, dict[str, object]] = {}
    for file in listing.files:
        entry: dict[str, object] = {"size": file.size, "blob_id": file.blob_id or ""}
        if file.lfs_sha256 is not None:
            entry["lfs_sha256"] = file.lfs_sha256
            entry["lfs_size"] = file.size
        entries[file.path] = entry
    data = {"format_version": TREE_FORMAT_VERSION, "files": dict(sorted(entries.items()))}
    if not tree.is_file():
        _write_atomic(tree, json.dumps(data, indent=1))
    ref_name = listing.revision or DEFAULT_REVISION
    if not is_commit(ref_name):
        ref = folder / "refs" / ref_name
        if not ref.is_file() or ref.read_text(encoding="utf-8").strip() != listing.commit:
            # huggingface_hub writes the bare commit id, no newline.
            _write_atomic(ref, listing.commit)


def fetch_file(
    model: str, commit: str, filename: str, on_bytes: Callable[[int], None] | None = None
) -> int:
    """Put one file of `commit` into the hub cache and return the bytes fetched.

    huggingface_hub 2.4 downloads into a process-unique temporary file that it deletes when a
    download fails, and buffers 10 MB before writing, so an interrupted multi-GB shard would
    start over. We keep the partial blob as `blobs/<etag>.incomplete` (the name huggingface_hub
    itself used for resumable downloads), write every chunk as it arrives and continue with an
    HTTP Range request; the finished blob and its snapshot link are what `hf_hub_download`
    makes (same metadata call, same etag-named blob, same relative symlink).
    """
    from huggingface_hub.file_download import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import WeakFileLock, build_hf_headers

    folder = repo_folder(model)
    pointer = folder / "snapshots" / commit / filename
    if pointer.exists():
        return 0
    base = endpoint()
    with translate_errors(model, commit, filename):
        url = hf_hub_url(model, filename, revision=commit, endpoint=base)
        meta = get_hf_file_metadata(
            url,
            timeout=request_timeout(),
            endpoint=base,
            library_name="agent-manager",
            library_version=__version__,
        )
        if not meta.etag or not meta.commit_hash:
            raise HubError(
                f"The hub at {base} sent no ETag or commit id for {model}/{filename}.",
                hint="Check HF_ENDPOINT: it must point at a Hugging Face hub (or a mirror).",
            )
        blob = folder / "blobs" / meta.etag
        fetched = 0
        if not blob.exists():
            lock = cache_dir() / ".locks" / folder.name / f"{meta.etag}.lock"
            lock.parent.mkdir(parents=True, exist_ok=True)
            blob.parent.mkdir(parents=True, exist_ok=True)
            with WeakFileLock(str(lock)):
                if not blob.exists():
                    headers = build_hf_headers(
                        library_name="agent-manager", library_version=__version__
                    )
                    if _host(meta.location) != _host(url):
                        # A signed CDN URL: the token must not travel there.
                        headers.pop("authorization", None)
                    fetched = _fetch_blob(meta.location, blob, meta.size, headers, on_bytes)
        _link(blob, pointer)
    return fetched


def _fetch_blob(
    location: str,
    blob: Path,
    size: int | None,
    headers: dict[str, str],
    on_bytes: Callable[[int], None] | None,
) -> int:
    """Continue `blobs/<etag>.incomplete` from where it stopped; rename it to the blob when whole.

    A dropped connection or a busy hub (429/5xx) is retried with Range while it keeps making
    progress; after MAX_STALLED_RETRIES failures in a row the error goes up and the partial
    file stays for the next run.
    """
    partial = blob.with_name(blob.name + ".incomplete")
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
    location: str,
    partial: Path,
    have: int,
    headers: dict[str, str],
    on_bytes: Callable[[int], None] | None,
) -> int:
    """One GET (Range from `have`), appended to `partial` chunk by chunk as it arrives."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import get_session, hf_raise_for_status

    request_headers = dict(headers)
    request_headers["Accept-Encoding"] = "identity"
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
    target = os.path.relpath(blob, pointer.parent)
    try:
        os.symlink(target, pointer)
    except FileExistsError:
        pass


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc


def _write_atomic(path: Path, text: str) -> None:
    from agent_manager.fsio import write_text_atomic

    write_text_atomic(path, text)


def _api() -> HfApi:
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint(), library_name="agent-manager", library_version=__version__)


@contextmanager
def translate_errors(
    model: str, revision: str | None, filename: str | None = None
) -> Iterator[None]:
    """huggingface_hub / httpx exceptions → a HubError naming the repo and what to do."""
    import httpx2
    from huggingface_hub import errors as hf

    # A commit id in a message is noise; a branch or tag name is what the spec says.
    at = f"@{revision}" if revision and not is_commit(revision) else ""
    what = f"{filename} of {model}" if filename else f"{model}{at}"
    try:
        yield
    except hf.GatedRepoError:
        if has_token():
            message = f"{model} is a gated repo and the account of your HF_TOKEN has no access yet."
        else:
            message = f"{model} is a gated repo and no Hugging Face token is set."
        raise GatedRepoError(
            message,
            hint=f"Accept the licence at https://huggingface.co/{model} and set HF_TOKEN to a "
            "read token of that account (https://huggingface.co/settings/tokens).",
        ) from None
    except hf.RevisionNotFoundError:
        raise RevisionNotFoundError(
            f"{model} has no revision '{revision}'.",
            hint="Set 'revision' in the agent's spec to a branch, tag or commit of the repo, or "
            "remove it to use the default branch.",
        ) from None
    except hf.RemoteEntryNotFoundError:
        raise FileNotOnHubError(
            f"{model}{at} has no file '{filename}'.",
            hint="The repo changed while downloading; run download-models again.",
        ) from None
    except hf.RepositoryNotFoundError:
        if has_token():
            hint = (
                "Check 'model' in the agent's spec; if the repo is private, HF_TOKEN must belong "
                "to an account that can read it."
            )
        else:
            hint = "Check 'model' in the agent's spec; if the repo is private, set HF_TOKEN."
        raise RepoNotFoundError(
            f"{model} does not exist on {endpoint()}, or it is private.", hint=hint
        ) from None
    except hf.OfflineModeIsEnabled:
        raise HubUnreachableError(
            f"HF_HUB_OFFLINE is set, so {model} cannot be fetched from the hub.",
            hint="Unset HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE) to download.",
        ) from None
    except hf.HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status == 401:
            raise BadTokenError(
                f"The hub refused the Hugging Face token (401) while fetching {model}.",
                hint="The token in HF_TOKEN (or from `hf auth login`) is invalid or revoked; "
                "create a read token at https://huggingface.co/settings/tokens.",
            ) from None
        raise HubUnreachableError(
            f"The hub answered HTTP {status} while fetching {what}.",
            hint="The hub may be down or rate-limiting; run download-models again later "
            "(files already fetched are kept, partial ones resume).",
        ) from None
    except hf.LocalEntryNotFoundError:
        raise _unreachable(model, "not cached and the hub cannot be reached") from None
    except (httpx2.TimeoutException, TimeoutError):
        raise HubUnreachableError(
            f"The hub at {endpoint()} did not answer within {request_timeout():g} s for {model}.",
            hint="Check the network, proxy and HF_ENDPOINT; a slow link can wait longer with "
            "HF_HUB_ETAG_TIMEOUT=<seconds>.",
        ) from None
    except (httpx2.TransportError, ConnectionError) as error:
        raise _unreachable(model, f"{type(error).__name__}: {error}") from None


def _unreachable(model: str, why: str) -> HubUnreachableError:
    return HubUnreachableError(
        f"Cannot reach the hub at {endpoint()} for {model} ({why}).",
        hint="Check the network connection, proxy settings and HF_ENDPOINT, then run "
        "download-models again; files already fetched are kept and partial ones resume.",
    )
