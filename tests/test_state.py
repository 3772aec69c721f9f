"""Per-agent states: which moves are allowed, how Docker's view reads as a state, and the
moves a switch makes."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from agent_manager.adapters.docker import AgentContainer
from agent_manager.observe.state import (
    AgentMachine,
    AgentState,
    IllegalTransition,
    current_states,
    state_of,
    states_from,
)
from agent_manager.observe.status import serving_probe
from agent_manager.spec.loader import load_agent
from agent_manager.spec.workspace import resolve_workspace
from agent_manager.switch.context import LaunchEvents, LaunchFailed
from agent_manager.switch.core import switch_to
from tests.fakes import nvml as fake_nvml
from tests.fakes.docker import Behaviour, FakeDocker, install

S = AgentState


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    fake_nvml.install_unavailable(monkeypatch)
    return install(monkeypatch)


def walk(*states: AgentState) -> list[tuple[str, AgentState, AgentState]]:
    seen: list[tuple[str, AgentState, AgentState]] = []
    machine = AgentMachine("po", states[0], on_change=lambda *move: seen.append(move))
    for state in states[1:]:
        machine.move(state)
    return seen


# --------------------------------------------------------------------------- transitions


def test_a_cold_start_and_stop_is_a_legal_walk() -> None:
    moves = walk(S.STOPPED, S.STARTING, S.READY, S.STOPPING, S.STOPPED)
    assert [(old.value, new.value) for _, old, new in moves] == [
        ("stopped", "starting"),
        ("starting", "ready"),
        ("ready", "stopping"),
        ("stopping", "stopped"),
    ]


def test_sleeping_and_waking_goes_back_through_starting() -> None:
    assert len(walk(S.READY, S.ASLEEP, S.STARTING, S.READY)) == 3
    assert len(walk(S.ASLEEP, S.STOPPING, S.STOPPED)) == 2


def test_a_failed_agent_is_removed_before_it_starts_again() -> None:
    assert len(walk(S.STARTING, S.FAILED, S.STOPPING, S.STOPPED, S.STARTING)) == 4
    with pytest.raises(IllegalTransition):
        walk(S.FAILED, S.STARTING)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.STOPPED, S.READY),  # ready only after starting
        (S.STOPPED, S.STOPPING),
        (S.STOPPED, S.ASLEEP),
        (S.STARTING, S.ASLEEP),  # only a ready agent can be put to sleep
        (S.ASLEEP, S.READY),  # waking is starting until it serves again
        (S.READY, S.STARTING),
        (S.READY, S.READY),
        (S.STOPPING, S.STARTING),
        (S.FAILED, S.READY),
    ],
)
def test_an_illegal_move_raises_names_the_agent_and_keeps_the_state(
    old: AgentState, new: AgentState
) -> None:
    machine = AgentMachine("po", old)
    with pytest.raises(IllegalTransition) as error:
        machine.move(new)
    assert machine.state is old
    assert f"po cannot go from {old.value} to {new.value}" in error.value.message
    assert error.value.hint == "See `agent-manager status`, then run the command again."


# --------------------------------------------------------------------------- read from Docker


@pytest.mark.parametrize(
    ("docker_state", "exit_code", "state"),
    [
        ("running", 0, S.STARTING),  # running, but serving is not proven without a probe
        ("created", 0, S.STARTING),
        ("restarting", 1, S.STARTING),
        ("removing", 0, S.STOPPING),
        ("exited", 0, S.STOPPED),
        ("exited", 1, S.FAILED),
        ("exited", 137, S.FAILED),
        ("dead", 1, S.FAILED),
        ("paused", 0, S.FAILED),
    ],
)
def test_a_state_is_read_from_the_container_docker_reports(
    fake: FakeDocker, docker_state: str, exit_code: int, state: AgentState
) -> None:
    container = fake.add("po", state=docker_state, exit_code=exit_code)
    assert state_of(container) is state


def test_no_container_reads_as_stopped_and_a_probe_decides_for_a_running_one(
    fake: FakeDocker,
) -> None:
    assert state_of(None) is S.STOPPED
    running = fake.add("po")
    assert state_of(running, probe=lambda c: S.READY) is S.READY
    assert state_of(running, probe=lambda c: S.ASLEEP) is S.ASLEEP
    exited = fake.add("architect", state="exited", exit_code=1)
    assert state_of(exited, probe=lambda c: S.READY) is S.FAILED, "a probe is for running ones"


def test_current_states_come_from_docker_and_name_agents_without_containers(
    fake: FakeDocker,
) -> None:
    fake.add("architect", port=8000)
    fake.add("po", state="exited", port=8002, exit_code=1)
    now = current_states(["po", "developer"])
    assert {name: found.state for name, found in now.items()} == {
        "architect": S.STARTING,
        "developer": S.STOPPED,
        "po": S.FAILED,
    }
    assert now["developer"].container is None
    assert now["architect"].container is not None


def test_a_running_agent_reads_as_ready_once_its_server_answers(
    workspace: Path, fake: FakeDocker
) -> None:
    fake.add("po", port=8002)
    probe = serving_probe(resolve_workspace(workspace))
    assert current_states(probe=probe)["po"].state is S.STARTING  # /health not answering yet
    assert current_states(probe=probe)["po"].state is S.READY


def test_an_agents_running_container_decides_over_a_newer_crashed_one(fake: FakeDocker) -> None:
    running = fake.add("po")
    crashed = replace(fake.add("po", state="exited", exit_code=1), started_at="2099-01-01T00:00Z")
    assert states_from([crashed, running])["po"].state is S.STARTING


def test_the_running_agents_are_asked_at_once_and_each_keeps_its_own_answer(
    fake: FakeDocker,
) -> None:
    # Each probe waits until all three are in flight: asked one by one, the first would
    # wait alone until the barrier's timeout breaks it.
    together = threading.Barrier(3, timeout=5)
    answers = {"po": S.READY, "architect": S.ASLEEP, "developer": S.STARTING}

    def probe(container: AgentContainer) -> AgentState:
        together.wait()
        return answers[container.agent]

    containers = [fake.add(agent) for agent in answers]
    found = states_from([*containers, fake.add("qa", state="exited", exit_code=1)], [], probe)
    assert {name: now.state for name, now in found.items()} == {**answers, "qa": S.FAILED}


def test_a_probe_that_fails_for_one_running_agent_fails_the_read(fake: FakeDocker) -> None:
    def probe(container: AgentContainer) -> AgentState:
        if container.agent == "architect":
            raise IllegalTransition("architect", S.READY, S.STOPPED)
        return S.READY

    with pytest.raises(IllegalTransition):
        states_from([fake.add("po"), fake.add("architect")], [], probe)


# --------------------------------------------------------------------------- a switch's moves


def switch_moves(workspace: Path, agent: str) -> list[tuple[str, str, str]]:
    moves: list[tuple[str, str, str]] = []
    events = LaunchEvents(state=lambda name, old, new: moves.append((name, old.value, new.value)))
    try:
        switch_to(resolve_workspace(workspace), agent, events=events)
    except LaunchFailed:
        pass
    return moves


def test_a_switch_stops_the_old_agent_then_starts_the_new_one(
    workspace: Path, fake: FakeDocker
) -> None:
    fake.add("architect", port=8000)
    assert switch_moves(workspace, "po") == [
        ("architect", "starting", "stopping"),
        ("architect", "stopping", "stopped"),
        ("po", "stopped", "starting"),
        ("po", "starting", "ready"),
    ]


def test_a_crashed_agent_is_removed_before_it_starts_again_and_can_fail_again(
    workspace: Path, fake: FakeDocker
) -> None:
    fake.add("po", state="exited", port=8002, exit_code=1)
    fake.behaviour["po"] = Behaviour(exits_with=1, log=["KeyboardInterrupt: terminated"])
    assert switch_moves(workspace, "po") == [
        ("po", "failed", "stopping"),
        ("po", "stopping", "stopped"),
        ("po", "stopped", "starting"),
        ("po", "starting", "failed"),
    ]


def test_a_container_docker_is_already_removing_is_finished_then_replaced(
    workspace: Path, fake: FakeDocker
) -> None:
    fake.add("po", state="removing", port=8002)
    assert switch_moves(workspace, "po") == [
        ("po", "stopping", "stopped"),
        ("po", "stopped", "starting"),
        ("po", "starting", "ready"),
    ]


def test_a_kept_agent_only_becomes_ready(workspace: Path, fake: FakeDocker) -> None:
    container = fake.add("po", port=8002)
    spec_hash = load_agent(resolve_workspace(workspace), "po").spec_hash()
    fake.containers[container.id] = replace(
        container, spec_hash=spec_hash, labels={"com.docker.compose.config-hash": "abc"}
    )
    fake.config_hash["po"] = "abc"
    assert switch_moves(workspace, "po") == [("po", "starting", "ready")]
