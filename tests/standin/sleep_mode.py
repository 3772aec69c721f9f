"""vLLM 0.33 sleep mode for the stand-in (standard library only, imported by vllm_standin.py).

Like vLLM, the endpoints exist only when the server runs with `--enable-sleep-mode` AND
`VLLM_SERVER_DEV_MODE=1`:

    POST /sleep?level=1|2[&mode=abort|wait|keep]   {"status": "sleeping", "level": N}
    POST /wake_up[?tags=weights&tags=kv_cache]     {"status": "awake", "tags": [...]}
    GET  /is_sleeping                              {"is_sleeping": bool}
    POST /collective_rpc {"method": "reload_weights"}   (needed after a level-2 wake)
    POST /reset_prefix_cache

Environment knobs:
    STANDIN_SLEEP_SECONDS   how long falling asleep takes (default 0.1)
    STANDIN_WAKE_SECONDS    how long waking takes (default 0.2)
    STANDIN_WAKE_FAIL       error (500, stays asleep), hang (never answers), crash (engine dies)
    STANDIN_SLEEP_RESIDUAL_GIB  what the "still in use" part of the sleep line says (0.61)

Not vLLM: `GET /standin/counts` returns {"loads", "reloads", "sleeps", "wakes"} of this
process, so tests can tell a wake from a restart.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

WEIGHTS_GIB = 5.42  # what the startup log's "Model loading took" line says
KV_CACHE_GIB = 6.12  # "Available KV cache memory"
WAKE_FAILURES = ("", "error", "hang", "crash")


def dev_mode() -> bool:
    try:
        return bool(int(os.environ.get("VLLM_SERVER_DEV_MODE", "0") or "0"))
    except ValueError:
        return False


class SleepMode:
    """The engine's sleep state and counters; `routes()` are added to the server's table."""

    def __init__(self, args: dict[str, Any], log: Any, stop: threading.Event) -> None:
        self.enabled = bool(args.get("enable_sleep_mode")) and dev_mode()
        self.sleep_seconds = max(0.0, float(os.environ.get("STANDIN_SLEEP_SECONDS", "0.1")))
        self.wake_seconds = max(0.0, float(os.environ.get("STANDIN_WAKE_SECONDS", "0.2")))
        self.wake_fail = os.environ.get("STANDIN_WAKE_FAIL", "").strip().lower()
        self.residual = float(os.environ.get("STANDIN_SLEEP_RESIDUAL_GIB", "0.61"))
        self.log = log
        self.stop = stop
        self.lock = threading.Lock()
        self.level = 0  # 0 awake, else the level it sleeps at
        self.weights_valid = True  # False after a level-2 wake until reload_weights
        self.counts = {"loads": 1, "reloads": 0, "sleeps": 0, "wakes": 0}

    def routes(self, handler: Any) -> dict[tuple[str, str], Callable[[], None]]:
        table: dict[tuple[str, str], Callable[[], None]] = {
            ("GET", "/standin/counts"): lambda: handler._json(200, self.counts)
        }
        if not self.enabled:
            return table
        query = parse_qs(urlsplit(handler.path).query)
        table.update(
            {
                ("POST", "/sleep"): lambda: self._sleep(handler, query),
                ("POST", "/wake_up"): lambda: self._wake(handler, query),
                ("GET", "/is_sleeping"): lambda: self._is_sleeping(handler),
                ("POST", "/collective_rpc"): lambda: self._rpc(handler),
                ("POST", "/reset_prefix_cache"): lambda: self._reset(handler),
            }
        )
        return table

    def route_lines(self) -> list[tuple[str, str]]:
        if not self.enabled:
            return []
        return [
            ("/sleep", "POST"),
            ("/wake_up", "POST"),
            ("/is_sleeping", "GET"),
            ("/collective_rpc", "POST"),
            ("/reset_prefix_cache", "POST"),
        ]

    # -- handlers

    def _sleep(self, handler: Any, query: dict[str, list[str]]) -> None:
        raw = (query.get("level") or ["1"])[0]
        if raw not in ("0", "1", "2"):
            handler._json(422, {"detail": f"level must be 0, 1 or 2, got {raw!r}"})
            return
        level = int(raw)
        self.log.api(f"sleep the engine with level {level}", where="api_router.py:41")
        started = time.monotonic()
        with self.lock:
            if self.level == 0 and level > 0:
                time.sleep(self.sleep_seconds)
                freed = WEIGHTS_GIB + KV_CACHE_GIB
                self.log.engine(
                    f"Sleep mode freed {freed:.2f} GiB memory, {self.residual:.2f} GiB memory "
                    "is still in use.",
                    where="gpu_worker.py:152",
                )
                self.level = level
                self.counts["sleeps"] += 1
            self.log.engine(
                f"It took {time.monotonic() - started:.6f} seconds to fall asleep.",
                where="abstract.py:322",
            )
        handler._json(200, {"status": "sleeping", "level": level})

    def _wake(self, handler: Any, query: dict[str, list[str]]) -> None:
        tags = query.get("tags") or None
        self.log.api(f"wake up the engine with tags: {tags}", where="api_router.py:58")
        started = time.monotonic()
        if self.wake_fail == "hang":
            self.stop.wait()
            return
        with self.lock:
            time.sleep(self.wake_seconds)
            if self.wake_fail == "error":
                self.log.engine(
                    "Error waking up: CUDA error: out of memory (cuMemCreate)",
                    where="cumem.py:201",
                    level="ERROR",
                )
                handler._json(500, {"detail": "CUDA error: out of memory"})
                return
            if self.wake_fail == "crash":
                self.log.engine(
                    "EngineCore encountered a fatal error.\nRuntimeError: CUDA error: out of "
                    "memory (cuMemCreate)",
                    where="core.py:1020",
                    level="ERROR",
                )
                self.log.api("AsyncLLM output_handler failed.", where="async_llm.py:520")
                handler._json(500, {"detail": "EngineDeadError"})
                os._exit(1)
            if self.level == 2:
                self.weights_valid = False  # discarded: reload_weights must follow
            if self.level:
                self.counts["wakes"] += 1
            self.level = 0
            shown = tags or ["weights", "kv_cache"]
            self.log.engine(
                f"It took {time.monotonic() - started:.6f} seconds to wake up tags {shown}.",
                where="abstract.py:341",
            )
        handler._json(200, {"status": "awake", "tags": tags})

    def _is_sleeping(self, handler: Any) -> None:
        self.log.api("check whether the engine is sleeping", where="api_router.py:67")
        handler._json(200, {"is_sleeping": self.level > 0})

    def _rpc(self, handler: Any) -> None:
        body = handler._body()
        if body is None:
            return
        method = body.get("method")
        if method is None:
            handler._json(400, {"detail": "Missing 'method' in request body"})
            return
        if method != "reload_weights":
            handler._json(500, {"detail": f"AttributeError: Worker has no method '{method}'"})
            return
        with self.lock:
            time.sleep(self.wake_seconds)
            self.weights_valid = True
            self.counts["reloads"] += 1
            self.log.engine(
                f"Loading weights took {self.wake_seconds:.2f} seconds",
                where="default_loader.py:291",
            )
        handler._json(200, {"results": [None]})

    def _reset(self, handler: Any) -> None:
        self.log.engine("Successfully reset prefix cache", where="block_pool.py:388")
        handler._send(200, b"")
