"""vLLM 0.33 sleep mode for the stand-in (standard library only, imported by vllm_standin.py).

Like vLLM, the endpoints exist only when the server runs with `--enable-sleep-mode` AND
`VLLM_SERVER_DEV_MODE=1`:

    POST /sleep?level=0|1|2[&mode=abort|wait|keep]   {"status": "sleeping", "level": N}
    POST /wake_up[?tags=weights&tags=kv_cache]      {"status": "awake"|"sleeping", "tags": ...}
    GET  /is_sleeping                               {"is_sleeping": bool}
    POST /collective_rpc {"method": "reload_weights"}    (needed after a level-2 wake)
    POST /reset_prefix_cache                        {"success": bool}

What vLLM 0.33 does and the stand-in copies (vllm/v1/engine/core.py, entrypoints/serve/dev/):
- `/sleep` pauses the scheduler first. Every pause mode QUEUES new requests (they are held, not
  refused); `abort` (the default) ends the in-flight ones at once, `wait` lets them finish
  before the memory is released, `keep` freezes them.
- `/wake_up` without tags wakes everything; with tags only those. The scheduler resumes (held
  requests run) the moment no tag sleeps any more; the answer says "sleeping" until then.
- After a level-2 sleep the weights were discarded: once "weights" is awake the memory is
  mapped but uninitialised until `reload_weights`. A request that runs then answers HTTP 200
  with garbage (`!!!!!!`), as vLLM does (vLLM PR #54235, issue #29341).
- `reload_weights` with the weights still asleep fails (nothing is mapped to load into).

Environment knobs:
    STANDIN_SLEEP_SECONDS   how long falling asleep takes (default 0.1)
    STANDIN_WAKE_SECONDS    how long waking (and reload_weights) takes (default 0.2)
    STANDIN_WAKE_FAIL       error (500, stays asleep), hang (never answers), crash (engine dies)
    STANDIN_SLEEP_RESIDUAL_GIB  what the "still in use" part of the sleep line says (0.61)
    STANDIN_RESET_PREFIX_FAIL   1: /reset_prefix_cache answers {"success": false}
    STANDIN_RELOAD_BROKEN       1: reload_weights succeeds but the weights stay wrong (an
                                upstream reload bug, e.g. of a quantized checkpoint)

Not vLLM: `GET /standin/counts` returns {"loads", "reloads", "sleeps", "wakes", "garbage",
"aborted"} of this process, so tests can tell a wake from a restart and a bad wake order.
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
SLEEP_TAGS = ("weights", "kv_cache")
PAUSE_MODES = ("abort", "wait", "keep")
GARBAGE = "!!!!!!"
# vllm/config/model.py, ModelConfig.__post_init__ on a platform without sleep mode (CPU).
NO_SLEEP_ON_CPU = "ValueError: Sleep mode is not supported on current platform."


def dev_mode() -> bool:
    try:
        return bool(int(os.environ.get("VLLM_SERVER_DEV_MODE", "0") or "0"))
    except ValueError:
        return False


def cpu_platform() -> bool:
    """The CPU image: the compose file sets VLLM_CPU_KVCACHE_SPACE for `engine: cpu` only."""
    return "VLLM_CPU_KVCACHE_SPACE" in os.environ or os.environ.get("STANDIN_DEVICE") == "cpu"


class SleepMode:
    """The engine's sleep state, its scheduler pause and counters; `routes()` join the table."""

    def __init__(self, args: dict[str, Any], log: Any, stop: threading.Event) -> None:
        self.enabled = bool(args.get("enable_sleep_mode")) and dev_mode()
        self.sleep_seconds = max(0.0, float(os.environ.get("STANDIN_SLEEP_SECONDS", "0.1")))
        self.wake_seconds = max(0.0, float(os.environ.get("STANDIN_WAKE_SECONDS", "0.2")))
        self.wake_fail = os.environ.get("STANDIN_WAKE_FAIL", "").strip().lower()
        self.residual = float(os.environ.get("STANDIN_SLEEP_RESIDUAL_GIB", "0.61"))
        self.reset_fails = os.environ.get("STANDIN_RESET_PREFIX_FAIL", "") == "1"
        self.reload_broken = os.environ.get("STANDIN_RELOAD_BROKEN", "") == "1"
        self.log = log
        self.stop = stop
        self.lock = threading.Lock()  # one sleep/wake/reload at a time, as the engine core
        self.state = threading.Condition()  # guards what follows; held requests wait on it
        self.paused = False  # the scheduler queues new requests
        self.sleeping_tags: set[str] = set()
        self.level = 0  # the level of the last sleep while any tag sleeps
        self.weights_valid = True  # False after a level-2 weights wake until reload_weights
        self.inflight = 0
        self.abort_epoch = 0  # bumped to end every in-flight request (mode=abort, shutdown)
        self.counts = {
            "loads": 1,
            "reloads": 0,
            "sleeps": 0,
            "wakes": 0,
            "garbage": 0,
            "aborted": 0,
        }

    # -- what the generation path asks

    def hold(self) -> int:
        """Wait while the scheduler is paused (vLLM queues, never refuses); returns a ticket."""
        with self.state:
            while self.paused and not self.stop.is_set():
                self.state.wait(0.2)
            self.inflight += 1
            return self.abort_epoch

    def release(self) -> None:
        with self.state:
            self.inflight -= 1
            self.state.notify_all()

    def garbage(self) -> bool:
        """True when the weights are mapped but not reloaded: the answer is garbage."""
        with self.state:
            if not self.weights_valid:
                self.counts["garbage"] += 1
                return True
            return False

    def aborted(self, ticket: int) -> bool:
        return ticket != self.abort_epoch

    def abort_all(self) -> None:
        with self.state:
            if self.inflight:
                self.counts["aborted"] += self.inflight
            self.abort_epoch += 1
            self.state.notify_all()

    # -- routes

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
        mode = (query.get("mode") or ["abort"])[0]
        if raw not in ("0", "1", "2"):
            handler._json(422, {"detail": f"level must be 0, 1 or 2, got {raw!r}"})
            return
        if mode not in PAUSE_MODES:
            handler._json(422, {"detail": f"mode must be one of {PAUSE_MODES}, got {mode!r}"})
            return
        level = int(raw)
        started = time.monotonic()
        with self.state:
            self.paused = True  # from here new requests are held
        if mode == "abort":
            # At once, even while an earlier `wait` sleep drains: that one then completes.
            self.abort_all()
        with self.lock:
            if mode == "wait":
                self.log.engine(
                    "Waiting for in-flight requests to complete before sleeping...",
                    where="core.py:1027",
                )
                with self.state:
                    while self.inflight and not self.stop.is_set():
                        self.state.wait(0.05)
            if level > 0 and not self.sleeping_tags:
                time.sleep(self.sleep_seconds)
                freed = WEIGHTS_GIB + KV_CACHE_GIB
                backed_up = WEIGHTS_GIB if level == 1 else 0.0
                self.log.engine(
                    f"CuMemAllocator: sleep freed {freed:.2f} GiB memory in total, of which "
                    f"{backed_up:.2f} GiB is backed up in CPU and the rest "
                    f"{freed - backed_up:.2f} GiB is discarded directly.",
                    where="cumem.py:282",
                )
                self.log.engine(
                    f"Sleep mode freed {freed:.2f} GiB memory, {self.residual:.2f} GiB memory "
                    "is still in use.",
                    where="gpu_worker.py:335",
                )
                with self.state:
                    self.sleeping_tags = set(SLEEP_TAGS)
                    self.level = level
                self.counts["sleeps"] += 1
                self.log.engine(
                    f"It took {time.monotonic() - started:.6f} seconds to fall asleep.",
                    where="abstract.py:408",
                )
        handler._json(200, {"status": "sleeping", "level": level})

    def _wake(self, handler: Any, query: dict[str, list[str]]) -> None:
        tags = query.get("tags") or None
        self.log.api(f"wake up the engine with tags: {tags}", where="api_router.py:49")
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
            fully_awake = self._wake_tags(tags, started)
        handler._json(200, {"status": "awake" if fully_awake else "sleeping", "tags": tags})

    def _wake_tags(self, tags: list[str] | None, started: float) -> bool:
        """EngineCore.wake_up: wake the tags; resume scheduling once none sleeps."""
        with self.state:
            if self.sleeping_tags:
                wanted = set(SLEEP_TAGS) if tags is None else set(tags) & set(SLEEP_TAGS)
                unknown = [t for t in tags or [] if t not in self.sleeping_tags]
                if unknown:  # vLLM warns and wakes nothing (executor/abstract.py)
                    self.log.engine(
                        f"Tag {unknown[0]} is not in sleeping tags {self.sleeping_tags}",
                        where="abstract.py:419",
                        level="WARNING",
                    )
                    wanted = set()
                if "weights" in wanted and self.level == 2:
                    self.weights_valid = False  # mapped again, contents gone
                shown = sorted(wanted) if tags is not None else sorted(self.sleeping_tags)
                self.sleeping_tags -= wanted
                if wanted:
                    self.log.engine(
                        f"It took {time.monotonic() - started:.6f} seconds to wake up tags "
                        f"{shown}.",
                        where="abstract.py:426",
                    )
                if not self.sleeping_tags and wanted:
                    self.counts["wakes"] += 1
            fully_awake = not self.sleeping_tags
            if fully_awake:
                self.paused = False
                self.level = 0
                self.state.notify_all()  # the held requests run now
            return fully_awake

    def _is_sleeping(self, handler: Any) -> None:
        with self.state:
            sleeping = self.paused or bool(self.sleeping_tags)
        handler._json(200, {"is_sleeping": sleeping})

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
            with self.state:
                weights_asleep = "weights" in self.sleeping_tags
            if weights_asleep:
                self.log.engine(
                    "RuntimeError: reload_weights needs the weights awake (wake_up?tags=weights)",
                    where="gpu_model_runner.py:4410",
                    level="ERROR",
                )
                handler._json(500, {"detail": "RuntimeError: the weights are asleep"})
                return
            time.sleep(self.wake_seconds)
            with self.state:
                self.weights_valid = not self.reload_broken
            self.counts["reloads"] += 1
            self.log.engine(
                f"Loading weights took {self.wake_seconds:.2f} seconds",
                where="default_loader.py:291",
            )
        handler._json(200, {"results": [None]})

    def _reset(self, handler: Any) -> None:
        self.log.api("Resetting prefix cache...", where="api_router.py:40")
        if self.reset_fails:
            self.log.engine(
                "Failed to reset prefix cache because some blocks (1) are not freed yet",
                where="block_pool.py:380",
                level="WARNING",
            )
        handler._json(200, {"success": not self.reset_fails})
