"""The sleep/wake client keeps vLLM 0.33's rules against the stand-in that knows them: the
level-2 order, every answer checked, the drain before a sleep, and the probe after a reload."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from agent_manager.adapters import vllm_dev
from agent_manager.adapters.docker import AgentContainer
from agent_manager.observe import sleep_records
from agent_manager.spec.loader import load_agent
from agent_manager.spec.workspace import resolve_workspace
from agent_manager.switch.engine_sleep import (
    SleepFailed,
    greedy_probe,
    put_to_sleep,
    wake,
)
from agent_manager.switch.hot import wake_target
from tests.standin.process import run_standin
from tests.standin.sleep_mode import GARBAGE

SLEEP_ARGS = ["Qwen/Qwen2.5-7B-Instruct-AWQ", "--served-model-name", "po", "--enable-sleep-mode"]
DEV_MODE = {"VLLM_SERVER_DEV_MODE": "1", "STANDIN_WAKE_SECONDS": "0.05"}


def _complete(url: str, out: list[str], tokens: int = 4) -> None:
    body = {"model": "po", "prompt": "hello there", "max_tokens": tokens, "temperature": 0}
    out.append(requests.post(f"{url}/v1/completions", json=body, timeout=60).json())


def _text(answer: Any) -> str:
    return str(answer["choices"][0]["text"])


def test_a_request_held_by_a_level_2_sleeper_gets_the_real_answer_after_our_wake() -> None:
    said: list[str] = []
    with run_standin(SLEEP_ARGS, DEV_MODE) as vllm:
        reference: list[str] = []
        _complete(vllm.url, reference)
        put_to_sleep(vllm.url, "po", 2, said.append, timeout=5)
        held: list[str] = []
        thread = threading.Thread(target=_complete, args=(vllm.url, held), daemon=True)
        thread.start()
        time.sleep(0.3)
        wake(vllm.url, "po", "po", 2, None, said.append, timeout=10)
        thread.join(10)
        counts = requests.get(f"{vllm.url}/standin/counts", timeout=5).json()
    assert _text(held[0]) == _text(reference[0]) and GARBAGE not in _text(held[0])
    assert counts["garbage"] == 0 and counts["reloads"] == 1


def test_a_wake_whose_weights_step_answers_awake_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """vLLM answers "awake" to tags=weights only if the KV cache was not asleep: then the
    scheduler already runs on weights not yet reloaded. That is a failed wake."""
    monkeypatch.setattr(
        vllm_dev, "wake_up", lambda url, tags, timeout: {"status": "awake", "tags": tags}
    )
    with pytest.raises(SleepFailed) as failed:
        wake("http://127.0.0.1:9", "po", "po", 2, None, print, timeout=1)
    assert "/wake_up?weights answered" in failed.value.message
    assert "expected status 'sleeping'" in failed.value.message


def test_a_level_1_wake_that_answers_sleeping_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vllm_dev, "wake_up", lambda url, tags, timeout: {"status": "sleeping"})
    with pytest.raises(SleepFailed, match="expected status 'awake'"):
        wake("http://127.0.0.1:9", "po", "po", 1, None, print, timeout=1)


def test_a_prefix_cache_reset_that_fails_is_said_and_does_not_fail_the_wake() -> None:
    said: list[str] = []
    env = {**DEV_MODE, "STANDIN_RESET_PREFIX_FAIL": "1"}
    with run_standin(SLEEP_ARGS, env) as vllm:
        put_to_sleep(vllm.url, "po", 2, said.append, timeout=5)
        wake(vllm.url, "po", "po", 2, None, said.append, timeout=10)
    assert said == [
        "po: vLLM could not reset its prefix cache after the reload (blocks still held); the "
        "sleep had already cleared it."
    ]


def test_a_sleep_lets_the_in_flight_request_finish() -> None:
    env = {**DEV_MODE, "STANDIN_TOKENS_PER_SECOND": "20"}
    with run_standin(SLEEP_ARGS, env) as vllm:
        answers: list[str] = []
        thread = threading.Thread(target=_complete, args=(vllm.url, answers, 20), daemon=True)
        thread.start()
        time.sleep(0.2)
        put_to_sleep(vllm.url, "po", 1, print, timeout=10)
        thread.join(10)
    assert len(_text(answers[0]).split()) == 20  # not aborted


def test_a_drain_past_its_limit_aborts_and_says_so() -> None:
    said: list[str] = []
    env = {**DEV_MODE, "STANDIN_TOKENS_PER_SECOND": "5"}
    with run_standin(SLEEP_ARGS, env) as vllm:
        answers: list[str] = []
        thread = threading.Thread(target=_complete, args=(vllm.url, answers, 50), daemon=True)
        thread.start()
        time.sleep(0.3)
        seconds = put_to_sleep(vllm.url, "po", 1, said.append, drain_s=0.5, timeout=1)
        thread.join(10)
        assert requests.get(f"{vllm.url}/is_sleeping", timeout=5).json()["is_sleeping"]
    assert seconds < 5
    assert said == [
        "po's in-flight requests did not finish within the drain limit (0.5 s); aborting them "
        "to sleep."
    ]
    assert len(_text(answers[0]).split()) < 50


def _sleeping_po(workspace: Path, port: int, probe: str | None) -> tuple[Any, AgentContainer]:
    ws = resolve_workspace(workspace)
    agent = load_agent(ws, "po")
    container = AgentContainer(
        "c1", "x-po-vllm-1", "po", "x-po", "running", None, None, None, port, "po", None
    )
    record = sleep_records.new_record("po", "c1", agent.spec_hash(), 2)
    record.probe = probe
    sleep_records.write_record(ws, record)
    return ws, container


def test_a_reload_that_answers_differently_is_restarted_cold_with_a_warning(
    workspace: Path,
) -> None:
    said: list[str] = []
    warned: list[str] = []
    env = {**DEV_MODE, "STANDIN_RELOAD_BROKEN": "1"}
    with run_standin(SLEEP_ARGS, env) as vllm:
        probe = greedy_probe(vllm.url, "po", None)
        put_to_sleep(vllm.url, "po", 2, said.append, timeout=5)
        ws, container = _sleeping_po(workspace, vllm.port, probe)
        agent = load_agent(ws, "po").with_engine("cuda")
        failed = wake_target(ws, agent, container, said.append, warned.append, 30)
    assert probe and probe != GARBAGE
    assert failed is not None and warned == [failed]
    assert failed == (
        f"po answers differently after its level-2 reload (probe {probe!r} before the sleep, "
        f"{GARBAGE!r} after); restarting it cold."
    )


def test_a_good_reload_passes_the_probe_and_marks_the_agent_awake(workspace: Path) -> None:
    said: list[str] = []
    with run_standin(SLEEP_ARGS, DEV_MODE) as vllm:
        probe = greedy_probe(vllm.url, "po", None)
        put_to_sleep(vllm.url, "po", 2, said.append, timeout=5)
        ws, container = _sleeping_po(workspace, vllm.port, probe)
        failed = wake_target(ws, load_agent(ws, "po"), container, said.append, said.append, 30)
    assert failed is None
    assert said[-1].startswith("Woke po (level 2) in ")
    record = sleep_records.read_record(ws, "po")
    assert record is not None and not record.asleep and record.probe == probe
