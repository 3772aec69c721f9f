"""A bad day in the middle of a hot switch, on the sleep-mode stand-in: the disk fills just
after an agent fell asleep. Nothing may be left asleep and unrecorded, and `status` asks the
engine, not only the record, whether an agent sleeps."""

from __future__ import annotations

import dataclasses
import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from agent_manager.adapters.containers import AgentContainer
from agent_manager.observe.sleepers import SleepAgent, asleep_labels
from agent_manager.spec.loader import load_agent
from agent_manager.spec.workspace import Workspace
from agent_manager.switch import hot
from agent_manager.switch.engine_sleep import SleepFailed, put_to_sleep
from tests.fakes import docker as fake_docker
from tests.standin.process import StandinProcess, run_standin

SLEEP_ARGS = ["Qwen/Qwen2.5-7B-Instruct-AWQ", "--served-model-name", "po", "--enable-sleep-mode"]
DEV_MODE = {"VLLM_SERVER_DEV_MODE": "1", "STANDIN_WAKE_SECONDS": "0.05"}


@pytest.fixture
def sleepy_po(workspace: Path) -> Iterator[StandinProcess]:
    path = workspace / "agents" / "po.yaml"
    path.write_text(path.read_text() + "switch: sleep\n")
    with run_standin(SLEEP_ARGS, env=DEV_MODE) as standin:
        yield standin


def _container(
    monkeypatch: pytest.MonkeyPatch, ws: Workspace, standin: StandinProcess
) -> AgentContainer:
    fake = fake_docker.install_docker(monkeypatch)
    added = fake.add("po", port=standin.port)
    container = dataclasses.replace(added, spec_hash=load_agent(ws, "po").spec_hash())
    fake.containers[container.id] = container
    return container


def _sleeping(url: str) -> bool:
    return bool(requests.get(url + "/is_sleeping", timeout=5).json()["is_sleeping"])


def test_a_sleep_that_cannot_be_recorded_is_woken_back(
    workspace: Path, sleepy_po: StandinProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace(workspace.resolve(), "test")
    container = _container(monkeypatch, ws, sleepy_po)
    monkeypatch.setattr(hot, "container_gpu_bytes", lambda container_id: None)  # no NVML here

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    from agent_manager import fsio

    monkeypatch.setattr(fsio.os, "fsync", full)
    said: list[str] = []
    agent = load_agent(ws, "po")
    start = time.monotonic()
    with pytest.raises(SleepFailed) as failed:
        hot._sleep_one(ws, SleepAgent(container, agent, sleepy_po.url, False), said.append, [])
    assert time.monotonic() - start < 15
    assert "po fell asleep, but No space left" in failed.value.message
    assert "woke it back" in failed.value.message
    assert not _sleeping(sleepy_po.url)  # awake again: the caller stops it cold, as promised
    assert not list((workspace / ".agent-manager" / "sleep").glob("*.tmp"))


def test_status_asks_the_engine_when_no_record_says_it_sleeps(
    workspace: Path, sleepy_po: StandinProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace(workspace.resolve(), "test")
    container = _container(monkeypatch, ws, sleepy_po)
    put_to_sleep(sleepy_po.url, "po", 1, print, timeout=5)  # asleep, and no record of it anywhere
    assert asleep_labels(ws, [container]) == {"po": "asleep"}
