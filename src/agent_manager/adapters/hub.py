"""Calls to the Hugging Face hub, through huggingface_hub's public API only.

The cache on disk (its layout, the resumable blob fetcher) is `hf_cache.py`, the one
other module that imports huggingface_hub; this one asks the hub: listings, file metadata,
access checks, downloads of single files.

huggingface_hub reads HF_ENDPOINT and HF_HOME once, when it is imported; we resolve both at call
time (`endpoint()`, `cache_dir()`) and pass them explicitly, so tests and users that
set them late still get what they asked for. The token follows huggingface_hub's own rules
(HF_TOKEN, then the token file of `hf auth login`).

Every hub failure leaves as a `HubError` subclass whose message names the repo and whose hint
says what to do; callers add the agent name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_manager import __version__
from agent_manager.adapters import hf_cache
from agent_manager.adapters.hf_cache import OnBytes, is_commit
from agent_manager.errors import HubError

if TYPE_CHECKING:
    from huggingface_hub import HfApi

DEFAULT_ENDPOINT = "https://huggingface.co"
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


def cache_dir() -> Path:
    """Where downloads go: `$HF_HOME/hub`, the cache the containers mount (see hf_cache.py)."""
    return hf_cache.hub_cache()


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
        path = hf_hub_download(model, filename, revision=revision, **_download_options())
    return Path(str(path))


def check_access(model: str, commit: str, filename: str) -> None:
    """Can this token download files of the repo? (Gated repos list their files to anyone but
    refuse the downloads.) One HEAD request for a file of the commit: unlike `HfApi.auth_check`,
    it takes a timeout, so a hub that stops answering cannot hang the dry run."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    base = endpoint()
    with translate_errors(model, commit, filename):
        get_hf_file_metadata(
            hf_hub_url(model, filename, revision=commit, endpoint=base),
            timeout=request_timeout(),
            endpoint=base,
            library_name="agent-manager",
            library_version=__version__,
        )


def record_listing(model: str, revision: str | None, commit: str, paths: list[str]) -> None:
    """Have huggingface_hub record the commit's listing (`trees/<commit>.json`) and the ref,
    the way its own downloads do, so the cache says offline what this revision holds.

    Run once every file is in place: `snapshot_download` then finds each one in the snapshot
    and fetches nothing (anything still missing it fetches itself).
    """
    from huggingface_hub import snapshot_download

    with translate_errors(model, revision):
        snapshot_download(
            model, revision=revision or commit, allow_patterns=paths, **_download_options()
        )


def fetch_file(model: str, commit: str, filename: str, on_bytes: OnBytes | None = None) -> int:
    """Put one file of `commit` into the hub cache and return the bytes fetched.

    huggingface_hub 2.4 downloads into a process-unique temporary file that it deletes when a
    download fails, and buffers 10 MB before writing, so an interrupted multi-GB shard would
    start over: plain files go through `hf_cache.fetch_blob`, which resumes them. Xet-backed
    files (the metadata carries `xet_file_data`) are left to `hf_hub_download`, which fetches
    them with Xet's chunk-level transfers and dedup, and so are empty files.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    if hf_cache.file_cached(model, commit, filename):
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
        if meta.xet_file_data is not None or meta.size == 0:
            # Xet transfers, and empty files (nothing to resume): huggingface_hub's own download.
            download_file(model, commit, filename)
            size = meta.size or 0
            if on_bytes is not None:
                on_bytes(size)
            return size
        if not meta.etag or not meta.commit_hash:
            raise HubError(
                f"The hub at {base} sent no ETag or commit id for {model}/{filename}.",
                hint="Check HF_ENDPOINT: it must point at a Hugging Face hub (or a mirror).",
            )
        headers = build_hf_headers(library_name="agent-manager", library_version=__version__)
        if _host(meta.location) != _host(url):
            # A signed CDN URL: the token must not travel there.
            headers.pop("authorization", None)
        return hf_cache.fetch_blob(
            model,
            commit,
            filename,
            etag=meta.etag,
            location=meta.location,
            size=meta.size,
            headers=headers,
            on_bytes=on_bytes,
        )


def _download_options() -> dict[str, Any]:
    """What every huggingface_hub download gets: our cache and hub, our name, no progress bars
    (the CLI draws its own)."""
    from huggingface_hub.utils import tqdm

    class Silent(tqdm):
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return {
        "cache_dir": cache_dir(),
        "endpoint": endpoint(),
        "etag_timeout": request_timeout(),
        "library_name": "agent-manager",
        "library_version": __version__,
        "tqdm_class": Silent,
    }


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc


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
