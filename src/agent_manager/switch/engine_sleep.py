"""Put a vLLM engine to sleep and wake it, every answer checked (what sleep freed is read by
`diagnosis/sleep_log.py`).

vLLM 0.33's rules (vllm/v1/engine/core.py, vllm/entrypoints/serve/dev/):
- `/sleep` pauses the scheduler first; every pause mode QUEUES new requests, and the default
  mode `abort` ends the in-flight ones. We sleep with `mode=wait` (they finish first), bounded
  by DRAIN_TIMEOUT_S like the router's drain; past it, `mode=abort` ends them.
- `/wake_up` without tags resumes scheduling at once; after a level-2 sleep the weights are
  then mapped but uninitialised, and queued requests answer garbage (vLLM PR #54235, issue
  #29341). So a level-2 wake is `wake_up?tags=weights` (answer: still "sleeping") →
  `collective_rpc reload_weights` → `wake_up?tags=kv_cache` (answer: "awake"): scheduling
  stays paused until the KV cache is back, and the reload runs without it mapped.
- `/reset_prefix_cache` answers {"success": false} while blocks are held; the sleep's pause
  already cleared the cache (core.py `_finish_pause`), so a false is retried, then said.
Ready means what `launch` means: not sleeping, /health 200 and /v1/models listing the name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agent_manager.adapters import http as http_adapter
from agent_manager.adapters import vllm_dev
from agent_manager.adapters.vllm_dev import DevApiError, DevApiTimeout
from agent_manager.errors import LaunchError
from agent_manager.observe import serving

SLEEP_TIMEOUT_S = 60.0  # offloading tens of GiB of weights to host RAM takes seconds
# How long in-flight requests may finish before a sleep: the router's --drain-timeout default.
DRAIN_TIMEOUT_S = 60.0
# Level 1 copies the weights back from host RAM (vLLM's blog: 3-6 s for large models);
# level 2 reloads them from disk.
WAKE_TIMEOUT_S = {1: 30.0, 2: 120.0}
CONFIRM_POLL_S = 0.02
RESET_TRIES = 3
# The probe compared before a level-2 sleep and after its wake: one greedy token.
PROBE_PROMPT = "The capital of France is"

Say = Callable[[str], None]


class SleepFailed(LaunchError):
    """A sleep or wake step failed or timed out; the caller falls back to a cold switch."""


def put_to_sleep(
    url: str,
    agent: str,
    level: int,
    say: Say,
    drain_s: float = DRAIN_TIMEOUT_S,
    timeout: float = SLEEP_TIMEOUT_S,
) -> float:
    """Drain, sleep at `level` and confirm; returns the seconds it took."""
    start = time.monotonic()
    try:
        try:
            answer = vllm_dev.sleep(url, level, "wait", drain_s + timeout)
        except DevApiTimeout:
            say(
                f"{agent}'s in-flight requests did not finish within the drain limit "
                f"({drain_s:g} s); aborting them to sleep."
            )
            answer = vllm_dev.sleep(url, level, "abort", timeout)
        _expect(answer, "sleeping", "/sleep")
        _until(lambda: vllm_dev.is_sleeping(url), True, time.monotonic() + timeout)
    except DevApiError as error:
        raise SleepFailed(f"{agent} did not fall asleep: {error.message}") from None
    return time.monotonic() - start


def wake(
    url: str,
    agent: str,
    served_name: str,
    level: int,
    api_key: str | None,
    say: Say,
    timeout: float = WAKE_TIMEOUT_S[2],
) -> float:
    """Wake in vLLM's order for `level`, then confirm it serves; returns the seconds."""
    start = time.monotonic()
    deadline = start + timeout

    def left() -> float:
        return max(0.1, deadline - time.monotonic())

    try:
        if level == 2:
            # Scheduling stays paused (answer "sleeping") while the KV cache sleeps.
            _expect(vllm_dev.wake_up(url, ["weights"], left()), "sleeping", "/wake_up?weights")
            vllm_dev.collective_rpc(url, "reload_weights", left())
            _expect(vllm_dev.wake_up(url, ["kv_cache"], left()), "awake", "/wake_up?kv_cache")
            _reset_prefix_cache(url, agent, say, left)
        else:
            _expect(vllm_dev.wake_up(url, None, left()), "awake", "/wake_up")
        _until(lambda: vllm_dev.is_sleeping(url), False, deadline)
    except DevApiError as error:
        raise SleepFailed(f"{agent} did not wake up: {error.message}") from None
    while True:
        seen = serving.look(url, api_key, served_name)
        if seen.ready:
            return time.monotonic() - start
        if time.monotonic() > deadline:
            raise SleepFailed(
                f"{agent} woke up but does not serve '{served_name}' within {timeout:.0f} s "
                f"(/health: {seen.health})."
            )
        time.sleep(CONFIRM_POLL_S)


def greedy_probe(url: str, served_name: str, api_key: str | None) -> str | None:
    """The one greedy token compared across a level-2 sleep; None if it could not be read."""
    return http_adapter.greedy_completion(url, served_name, PROBE_PROMPT, api_key)


def _reset_prefix_cache(url: str, agent: str, say: Say, left: Callable[[], float]) -> None:
    for _ in range(RESET_TRIES):
        if vllm_dev.reset_prefix_cache(url, left()):
            return
        time.sleep(0.05)
    say(
        f"{agent}: vLLM could not reset its prefix cache after the reload (blocks still held); "
        "the sleep had already cleared it."
    )


def _expect(answer: dict[str, Any], status: str, what: str) -> None:
    if answer.get("status") != status:
        raise DevApiError(f"{what} answered {answer!r}, expected status '{status}'.")


def _until(read: Callable[[], bool], wanted: bool, deadline: float) -> None:
    while read() is not wanted:
        if time.monotonic() > deadline:
            state = "sleeping" if not wanted else "awake"
            raise DevApiError(f"/is_sleeping still says {state} at the deadline.")
        time.sleep(CONFIRM_POLL_S)
