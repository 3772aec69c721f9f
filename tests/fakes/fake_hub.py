"""A local HTTP server posing as the Hugging Face hub, for the real huggingface_hub client.

It answers what `huggingface_hub` 2.4 asks when it lists and downloads a model repo:
`GET /api/models/{repo}[/revision/{rev}]` (model info with file sizes), `GET
/api/models/{repo}/tree/{rev}` (listing), and `HEAD`/`GET /{repo}/resolve/{rev}/{path}` with the
headers the client relies on (`X-Repo-Commit`, `ETag`, `X-Linked-Etag`, `X-Linked-Size`,
`Content-Length`, Range → 206). Errors carry the hub's `X-Error-Code` headers so the client
raises its own typed exceptions (GatedRepo, RepoNotFound, RevisionNotFound, EntryNotFound).

`cut_after(n)` simulates a network drop: the download in flight stops after `n` more body bytes
and, until `heal()`, every request is answered 503. `bytes_served` counts file bytes sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx", ".h5", ".msgpack")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(path: str) -> bool:
    return path.endswith(LFS_SUFFIXES)


@dataclass
class FakeRepo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    gated: bool = False
    granted_tokens: set[str] = field(default_factory=set)
    xet: bool = False  # LFS files announce Xet storage (X-Xet-Hash), as Xet-backed repos do

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        return revision if revision in self.commits else None


class FakeHub:
    """Start with `with FakeHub() as hub:`; `hub.url` is what HF_ENDPOINT should be."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.valid_tokens: set[str] = set()
        self.bytes_served = 0
        self.requests: list[tuple[str, str]] = []
        self._cut_budget: int | None = None
        self._down_after_cut = True
        self.down = False
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    # -- set-up ---------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        ref: str = "main",
        gated: bool = False,
        granted_tokens: set[str] | None = None,
        xet: bool = False,
    ) -> str:
        """Add (or add a commit to) a repo; `ref` then points at it. Returns the commit id."""
        repo = self.repos.setdefault(repo_id, FakeRepo())
        repo.gated = repo.gated or gated
        repo.xet = repo.xet or xet
        repo.granted_tokens |= granted_tokens or set()
        digest = hashlib.sha1(repo_id.encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + files[path])
        commit = digest.hexdigest()
        repo.commits[commit] = dict(files)
        repo.refs[ref] = commit
        return commit

    def cut_after(self, nbytes: int, *, then_down: bool = True) -> None:
        """Drop the connection after `nbytes` more file bytes, then answer 503 until heal()
        (or, with `then_down=False`, a dropped connection only: the next request is served)."""
        with self._lock:
            self._cut_budget = nbytes
            self._down_after_cut = then_down

    def heal(self) -> None:
        with self._lock:
            self._cut_budget = None
            self.down = False

    def reset_counters(self) -> None:
        with self._lock:
            self.bytes_served = 0
            self.requests.clear()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open keep-alive connections: the hub is gone."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- used by the handler ---------------------------------------------------------------

    def _take_budget(self, wanted: int) -> int:
        """How many of `wanted` bytes may still be sent before the simulated drop."""
        with self._lock:
            if self._cut_budget is None:
                return wanted
            allowed = min(wanted, self._cut_budget)
            self._cut_budget -= allowed
            if self._cut_budget <= 0 and allowed < wanted:
                self.down = self._down_after_cut
                self._cut_budget = None if not self._down_after_cut else self._cut_budget
            return allowed

    def _count(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_served += nbytes


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
_AUTH = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/auth-check$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        super().finish()

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
        self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        fake = self.fake
        path = unquote(urlsplit(self.path).path)
        fake.requests.append((self.command, path))
        if fake.down:
            self._error(503, None, "Service unavailable", body)
            return
        token = self._token()
        if token is not None and token not in fake.valid_tokens:
            self._error(401, None, "Invalid credentials in Authorization header", body)
            return
        if match := _RESOLVE.match(path):
            self._resolve(match["repo"], match["rev"], match["path"], token, body)
        elif match := _AUTH.match(path):
            self._auth_check(match["repo"], token, body)
        elif match := _TREE.match(path):
            self._tree(match["repo"], match["rev"], match["path"] or "", token, body)
        elif match := _INFO.match(path):
            self._info(match["repo"], match["rev"], token, body)
        else:
            self._error(404, None, "Not found", body)

    def _token(self) -> str | None:
        value = self.headers.get("Authorization", "")
        return value.removeprefix("Bearer ").strip() or None

    def _lookup(
        self, repo_id: str, revision: str | None, token: str | None, body: bool
    ) -> tuple[FakeRepo, str] | None:
        repo = self.fake.repos.get(repo_id)
        if repo is None:
            # Like the hub: anonymous callers get 401 so private repos do not leak.
            self._error(404 if token else 401, "RepoNotFound", "Repository not found", body)
            return None
        commit = repo.resolve(revision or "main")
        if commit is None:
            self._error(404, "RevisionNotFound", "Invalid rev id", body)
            return None
        return repo, commit

    def _info(self, repo_id: str, revision: str | None, token: str | None, body: bool) -> None:
        found = self._lookup(repo_id, revision, token, body)
        if found is None:
            return
        repo, commit = found
        siblings = []
        for name, data in sorted(repo.commits[commit].items()):
            sibling: dict[str, object] = {
                "rfilename": name,
                "size": len(data),
                "blobId": git_blob_id(data),
            }
            if is_lfs(name):
                sibling["lfs"] = {
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "pointerSize": 134,
                }
            siblings.append(sibling)
        info = {
            "id": repo_id,
            "modelId": repo_id,
            "sha": commit,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "siblings": siblings,
        }
        self._json(info, body)

    def _tree(
        self, repo_id: str, revision: str, prefix: str, token: str | None, body: bool
    ) -> None:
        found = self._lookup(repo_id, revision, token, body)
        if found is None:
            return
        repo, commit = found
        entries = []
        for name, data in sorted(repo.commits[commit].items()):
            if prefix and not name.startswith(prefix.rstrip("/") + "/"):
                continue
            entry: dict[str, object] = {
                "type": "file",
                "path": name,
                "size": len(data),
                "oid": git_blob_id(data),
            }
            if is_lfs(name):
                entry["lfs"] = {
                    "oid": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "pointerSize": 134,
                }
            entries.append(entry)
        self._json(entries, body)

    def _auth_check(self, repo_id: str, token: str | None, body: bool) -> None:
        found = self._lookup(repo_id, None, token, body)
        if found is not None and not self._refused_as_gated(repo_id, found[0], token, body):
            self._json({}, body)

    def _refused_as_gated(
        self, repo_id: str, repo: FakeRepo, token: str | None, body: bool, commit: str | None = None
    ) -> bool:
        if not repo.gated or token in repo.granted_tokens:
            return False
        self._error(
            403 if token else 401,
            "GatedRepo",
            f"Access to model {repo_id} is restricted. You must have access to it and be "
            "authenticated to access it. Please log in.",
            body,
            commit,
        )
        return True

    def _resolve(
        self, repo_id: str, revision: str, name: str, token: str | None, body: bool
    ) -> None:
        found = self._lookup(repo_id, revision, token, body)
        if found is None:
            return
        repo, commit = found
        if self._refused_as_gated(repo_id, repo, token, body, commit):
            return
        data = repo.commits[commit].get(name)
        if data is None:
            self._error(404, "EntryNotFound", "Entry not found", body, commit)
            return
        etag = hashlib.sha256(data).hexdigest() if is_lfs(name) else git_blob_id(data)
        start, status = 0, 200
        requested = self.headers.get("Range")
        if requested and (match := re.match(r"bytes=(\d+)-(\d*)$", requested)):
            start = int(match[1])
            status = 206
        payload = data[start:]
        self.send_response(status)
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", f'"{etag}"')
        if is_lfs(name):
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(len(data)))
            if repo.xet:
                self.send_header("X-Xet-Hash", etag)
                self.send_header("X-Xet-Refresh-Route", f"/api/models/{repo_id}/xet-read-token")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(payload)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if not body:
            return
        for offset in range(0, len(payload), 16384):
            chunk = payload[offset : offset + 16384]
            allowed = self.fake._take_budget(len(chunk))
            if allowed:
                self.wfile.write(chunk[:allowed])
                self.wfile.flush()
                self.fake._count(allowed)
            if allowed < len(chunk):
                self.close_connection = True
                return

    def _json(self, data: object, body: bool) -> None:
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def _error(
        self,
        status: int,
        code: str | None,
        message: str,
        body: bool,
        commit: str | None = None,
    ) -> None:
        payload = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)


@contextmanager
def running_hub() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        yield hub
