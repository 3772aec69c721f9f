"""Fixtures the hostile-input corpus names in `Case.needs`: broken machines, made real where
that is cheap (a socket that never answers, a Docker socket that is not there) and faked at
one seam where it is not (a full disk, a Ctrl-C, no GPU)."""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _silent_server(family: int, address: str | tuple[str, int]) -> Iterator[socket.socket]:
    """Accept every connection and never send a byte."""
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind(address)
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def silent_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for server in _silent_server(socket.AF_INET, ("127.0.0.1", 0)):
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
        yield url


# The default models ship with agent-manager (plan/shipped.py) and never ask the hub; tests of a
# silent hub give po a model that is not shipped.
UNSHIPPED_MODEL = "acme/Qwen2.5-7B-Instruct-AWQ-tuned"


@pytest.fixture
def cached_po_config() -> None:
    """config.json of po's model in the local cache (no weights), as a partial download leaves."""
    from agent_manager.adapters.hf_cache import repo_folder

    commit = "0123456789abcdef0123456789abcdef01234567"
    folder = repo_folder(UNSHIPPED_MODEL)
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    config = REPO / "tests" / "fixtures" / "configs" / "Qwen2.5-7B-Instruct-AWQ.json"
    (snapshot / "config.json").write_text(config.read_text())


@pytest.fixture
def docker_down(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")


@pytest.fixture
def docker_silent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A Docker socket that accepts and never answers (a hung daemon), with a short timeout."""
    import docker

    path = str(tmp_path / "silent-docker.sock")
    real_from_env = docker.from_env
    monkeypatch.setattr(docker, "from_env", lambda **kw: real_from_env(**{**kw, "timeout": 1}))
    for _ in _silent_server(socket.AF_UNIX, path):
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        yield


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes import nvml as fake_nvml

    fake_nvml.install_unavailable(monkeypatch)


@pytest.fixture
def disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every atomic write fails as a full disk does: after the temporary file was opened."""
    from agent_manager import fsio

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fsio.os, "fsync", full)


@pytest.fixture
def interrupt_before_compose(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while launch still checks things, before `docker compose up` ran."""
    from agent_manager.switch import core as switch

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(switch, "switch_to", interrupted)
