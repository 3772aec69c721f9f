"""Put a vLLM engine to sleep and wake it, each step confirmed (what sleep freed is read by
`diagnosis/sleep_log.py`).

vLLM 0.33 (`vllm/entrypoints/serve/dev/sleep/api_router.py`): `POST /sleep?level=N` answers
once the engine sleeps, `POST /wake_up` once it is awake. After a level-2 sleep the weights
were discarded, so a wake also needs `POST /collective_rpc {"method": "reload_weights"}` and
then `POST /reset_prefix_cache` (cached prefixes were computed with the old weights). Ready
means what `launch` means: not sleeping, /health 200 and /v1/models listing the served name.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agent_manager.adapters import vllm_dev
from agent_manager.adapters.vllm_dev import DevApiError
from agent_manager.errors import LaunchError
from agent_manager.observe import serving

SLEEP_TIMEOUT_S = 60.0  # offloading tens of GiB of weights to host RAM takes seconds
# Level 1 copies the weights back from host RAM (vLLM's blog: 3-6 s for large models);
# level 2 reloads them from disk.
WAKE_TIMEOUT_S = {1: 30.0, 2: 120.0}
CONFIRM_POLL_S = 0.02


class SleepFailed(LaunchError):
    """A sleep or wake step failed or timed out; the caller falls back to a cold switch."""


def put_to_sleep(url: str, agent: str, level: int, timeout: float = SLEEP_TIMEOUT_S) -> float:
    """Sleep at `level` and confirm with /is_sleeping; returns the seconds it took."""
    start = time.monotonic()
    try:
        vllm_dev.sleep(url, level, timeout)
        _until(lambda: vllm_dev.is_sleeping(url), True, start + timeout)
    except DevApiError as error:
        raise SleepFailed(f"{agent} did not fall asleep: {error.message}") from None
    return time.monotonic() - start


def wake(
    url: str,
    agent: str,
    served_name: str,
    level: int,
    api_key: str | None,
    timeout: float = WAKE_TIMEOUT_S[2],
) -> float:
    """Wake (and after level 2 reload the weights), then confirm it serves; returns seconds."""
    start = time.monotonic()
    deadline = start + timeout
    try:
        vllm_dev.wake_up(url, timeout)
        if level == 2:
            vllm_dev.collective_rpc(url, "reload_weights", max(1.0, deadline - time.monotonic()))
            vllm_dev.reset_prefix_cache(url, max(1.0, deadline - time.monotonic()))
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


def _until(read: Callable[[], bool], wanted: bool, deadline: float) -> None:
    while read() is not wanted:
        if time.monotonic() > deadline:
            state = "sleeping" if not wanted else "awake"
            raise DevApiError(f"/is_sleeping still says {state} at the deadline.")
        time.sleep(CONFIRM_POLL_S)
