"""Run the vLLM stand-in as a plain host process, for HTTP tests that need no Docker.

    from tests.standin.process import run_standin

    with run_standin(["Qwen/Qwen2.5-7B-Instruct-AWQ", "--served-model-name", "po"]) as vllm:
        requests.get(f"{vllm.url}/v1/models")   # vllm.url == "http://127.0.0.1:<port>"
        vllm.output()                           # everything it printed so far

`--host 127.0.0.1` and a free `--port` are added unless the args already carry them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

STANDIN = Path(__file__).resolve().parent / "vllm_standin.py"
FLAG_TABLE = Path(__file__).resolve().parents[2] / "src/agent_manager/data/serve-args-0.33.0.json"
READY_TIMEOUT_S = 20.0


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StandinProcess:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    _log: IO[bytes]

    def output(self) -> str:
        """Everything the stand-in printed so far (stdout and stderr together)."""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then wait; returns the exit code (kills it if it does not stop)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return int(self.proc.returncode)


def standin_command(args: list[str]) -> list[str]:
    return [sys.executable, str(STANDIN), *args]


def standin_env(env: dict[str, str] | None = None) -> dict[str, str]:
    merged = dict(os.environ)
    merged.setdefault("STANDIN_FLAGS", str(FLAG_TABLE))
    merged.setdefault("STANDIN_LOAD_SECONDS", "0")
    merged.update(env or {})
    return merged


def start_standin(args: list[str], env: dict[str, str] | None = None) -> StandinProcess:
    """Start the stand-in without waiting for it (use wait_healthy or read output())."""
    args = list(args)
    if "--port" not in args:
        args += ["--port", str(free_port())]
    if "--host" not in args:
        args += ["--host", "127.0.0.1"]
    port = int(args[args.index("--port") + 1])
    log = tempfile.NamedTemporaryFile(prefix="standin-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        standin_command(args), stdout=log, stderr=subprocess.STDOUT, env=standin_env(env)
    )
    return StandinProcess(url=f"http://127.0.0.1:{port}", port=port, proc=proc, _log=log)


def wait_healthy(standin: StandinProcess, timeout: float = READY_TIMEOUT_S) -> None:
    """Poll /health until 200; raise RuntimeError (with its output) if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if standin.proc.poll() is not None:
            raise RuntimeError(
                f"stand-in exited with {standin.proc.returncode}:\n{standin.output()}"
            )
        try:
            with urllib.request.urlopen(f"{standin.url}/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"stand-in not healthy after {timeout:.0f}s:\n{standin.output()}")


def wait_router(router: subprocess.Popen[str], url: str, timeout: float = 30) -> None:
    """Poll an `agent-manager serve` process's /health until 200; fail with its output if it
    exits or does not answer within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        assert router.poll() is None, router.communicate()[0]
        assert time.monotonic() < deadline, "the router did not answer /health"
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)


@contextmanager
def run_standin(args: list[str], env: dict[str, str] | None = None) -> Iterator[StandinProcess]:
    """Start the stand-in on a free port, wait until /health answers 200, stop it afterwards."""
    standin = start_standin(args, env)
    try:
        wait_healthy(standin)
        yield standin
    finally:
        standin.stop()
        standin._log.close()
        Path(standin._log.name).unlink(missing_ok=True)
