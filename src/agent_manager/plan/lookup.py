"""Each distinct checkpoint looked up once, all at the same time, with a bounded wait.

33 agents sharing one model made 33 hub round trips in a row (5.9 s with the hub unreachable);
now it is one lookup per (model, revision), in daemon threads, so a hub that hangs delays
`plan` by at most `wait_s` and never keeps the process alive after it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from agent_manager.plan.models import CheckpointFacts, Weights

Key = tuple[str, str | None]  # (model, revision)
LOOKUP_WAIT_S = 15.0
MAX_AT_ONCE = 8


def read_checkpoints(
    keys: Iterable[Key], wait_s: float | None = None
) -> dict[Key, CheckpointFacts]:
    from agent_manager.plan.checkpoint import read_checkpoint

    wait_s = LOOKUP_WAIT_S if wait_s is None else wait_s

    distinct = list(dict.fromkeys(keys))
    results: dict[Key, CheckpointFacts] = {}
    lock = threading.Lock()
    slots = threading.Semaphore(MAX_AT_ONCE)
    all_done = threading.Event()

    def look_up(key: Key) -> None:
        with slots:
            try:
                facts = read_checkpoint(*key)
            except Exception as error:  # noqa: BLE001 - a plan says what it could not learn
                facts = _unknown(f"config.json of {key[0]} could not be read: {error}")
        with lock:
            results[key] = facts
            if len(results) == len(distinct):
                all_done.set()

    if not distinct:
        return {}
    for key in distinct:
        threading.Thread(target=look_up, args=(key,), daemon=True, name="plan-lookup").start()
    all_done.wait(wait_s)
    with lock:
        late = f"no answer from the cache or the hub within {wait_s:g} s"
        return {key: results.get(key) or _unknown(late) for key in distinct}


def _unknown(problem: str) -> CheckpointFacts:
    return CheckpointFacts(
        shape=None,
        config_source="unknown",
        weights=Weights(bytes=None, source=problem),
        problems=[problem],
    )
