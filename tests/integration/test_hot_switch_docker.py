"""The hot switch on real Docker with the stand-in in sleep mode (--enable-sleep-mode and
VLLM_SERVER_DEV_MODE=1 come from the generated compose file, as for vLLM)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest
import requests

from tests.conftest import CliResult
from tests.integration.conftest import StandinWorkspace

Cli = Callable[..., CliResult]
WAKE = {"STANDIN_LOAD_SECONDS": "0.5", "STANDIN_WAKE_SECONDS": "0.05"}


def make_sleepy(ws: StandinWorkspace, cli: Cli, *agents: str) -> None:
    for name in agents:
        path = ws.root / "agents" / f"{name}.yaml"
        path.write_text(path.read_text() + "switch: sleep\n")
    assert cli("compose").code == 0
    for name in ws.agents:
        ws.set_standin_env(name, WAKE)


def launch(cli: Cli, agent: str, *extra: str) -> dict:  # type: ignore[type-arg]
    result = cli("launch", agent, "--json", *extra)
    assert result.code == 0, result.output
    return dict(json.loads(result.stdout)) | {"stderr": result.stderr}


def container_ids(ws: StandinWorkspace) -> dict[str, str]:
    ids = {}
    for agent in ws.agents:
        found = ws.compose(agent, "ps", "-q").stdout.split()
        if found:
            ids[agent] = found[0]
    return ids


def asleep(ws: StandinWorkspace, agent: str) -> bool:
    answer = requests.get(ws.url(agent) + "/is_sleeping", timeout=5).json()
    return bool(answer["is_sleeping"])


def counts(ws: StandinWorkspace, agent: str) -> dict[str, int]:
    return dict(requests.get(ws.url(agent) + "/standin/counts", timeout=5).json())


def test_sleep_agents_wake_instead_of_restarting(standin_workspace: StandinWorkspace, cli: Cli):
    ws = standin_workspace
    make_sleepy(ws, cli, "po", "architect")
    first = launch(cli, "po")
    second = launch(cli, "architect")
    assert (first["switch"], second["switch"], second["asleep"]) == ("cold", "cold", ["po"])
    assert "Put po to sleep (level 1)" in second["stderr"]
    ids = container_ids(ws)

    for agent in ("po", "architect", "po", "architect"):
        result = launch(cli, agent)
        assert result["switch"] == "hot", result["stderr"]
        assert f"Woke {agent} (level 1)" in result["stderr"]
        other = "architect" if agent == "po" else "po"
        assert not asleep(ws, agent) and asleep(ws, other)  # never two awake

    assert container_ids(ws) == ids
    po = counts(ws, "po")
    assert (po["loads"], po["reloads"], po["sleeps"], po["wakes"], po["garbage"]) == (1, 0, 3, 2, 0)
    assert counts(ws, "architect")["loads"] == 1

    status = cli("status", "--json")
    rows = {row["agent"]: row for row in json.loads(status.stdout)["agents"]}
    assert json.loads(status.stdout)["running"] == "architect"
    assert rows["po"]["sleep"] == "asleep (level 1, 5.4 GiB in host RAM)"
    assert "po is asleep (level 1, 5.4 GiB in host RAM)." in cli("status").stdout
    assert "po: switch sleep (level 1); asleep (level 1, 5.4 GiB in host RAM)" in cli("list").stdout

    stopped = cli("stop", "--all", "--json")
    assert sorted(s["agent"] for s in json.loads(stopped.stdout)["stopped"]) == ["architect", "po"]
    assert container_ids(ws) == {}


def test_a_failed_wake_falls_back_to_a_cold_start(standin_workspace: StandinWorkspace, cli: Cli):
    ws = standin_workspace
    make_sleepy(ws, cli, "po", "architect")
    ws.set_standin_env("architect", {**WAKE, "STANDIN_WAKE_FAIL": "error"})
    launch(cli, "architect")
    launch(cli, "po")
    before = container_ids(ws)

    result = launch(cli, "architect")

    said = " ".join(result["stderr"].split())
    assert result["switch"] == "cold"
    assert "architect did not wake up: /wake_up answered HTTP 500" in said
    assert "Restarting it cold." in said
    # The stand-in's wake error is CUDA out of memory: the sleepers go too, once.
    assert (
        "architect's wake ran out of GPU memory; stopping sleeping po and starting architect "
        "cold." in said
    )
    after = container_ids(ws)
    assert after["architect"] != before["architect"] and "po" not in after
    assert not asleep(ws, "architect")


def test_too_little_host_ram_sleeps_at_level_2_and_reloads_on_wake(
    standin_workspace: StandinWorkspace, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = standin_workspace
    make_sleepy(ws, cli, "po", "architect")
    monkeypatch.setattr("agent_manager.adapters.host.available_memory_bytes", lambda: 3 * 1024**3)
    launch(cli, "po")
    result = launch(cli, "architect")
    said = " ".join(result["stderr"].split())
    # 5.42 GiB of weights, no tensors known: the estimate is the 2x upper bound.
    assert "po: sleep level 1 would hold 10.8 GiB in host RAM" in said
    assert "but only 3.0 GiB is available" in said
    woke = launch(cli, "po")
    assert woke["switch"] == "hot" and "Woke po (level 2)" in woke["stderr"]
    assert counts(ws, "po")["reloads"] == 1


def test_cold_and_sleep_agents_switch_both_ways(standin_workspace: StandinWorkspace, cli: Cli):
    ws = standin_workspace
    make_sleepy(ws, cli, "po")  # architect stays cold
    launch(cli, "po")
    to_cold = launch(cli, "architect")
    assert to_cold["switch"] == "cold" and to_cold["asleep"] == ["po"]
    assert asleep(ws, "po")
    po_id = container_ids(ws)["po"]

    back = launch(cli, "po")
    assert back["switch"] == "hot" and back["stopped"] == ["architect"]
    assert set(container_ids(ws)) == {"po"} and container_ids(ws)["po"] == po_id

    forced = launch(cli, "architect", "--cold")
    assert forced["asleep"] == [] and "po" in forced["stopped"]
    assert set(container_ids(ws)) == {"architect"}


def test_launch_cold_restarts_a_sleeping_target(standin_workspace: StandinWorkspace, cli: Cli):
    ws = standin_workspace
    make_sleepy(ws, cli, "po", "architect")
    launch(cli, "po")
    launch(cli, "architect")
    po_id = container_ids(ws)["po"]
    result = launch(cli, "po", "--cold")
    assert result["switch"] == "cold" and "po sleeps; restarting it cold." in result["stderr"]
    assert set(container_ids(ws)) == {"po"} and container_ids(ws)["po"] != po_id


def test_a_request_held_by_a_sleeping_level_2_agent_gets_the_real_answer(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    """vLLM queues a request that reaches a sleeping agent's own port; our level-2 wake
    (weights -> reload_weights -> kv_cache) must let it run only on reloaded weights."""
    ws = standin_workspace
    path = ws.root / "agents" / "po.yaml"
    path.write_text(path.read_text() + "sleep_level: 2\n")
    make_sleepy(ws, cli, "po", "architect")
    launch(cli, "po")
    body = {"model": "po", "prompt": "hello there", "max_tokens": 4, "temperature": 0}
    reference = requests.post(ws.url("po") + "/v1/completions", json=body, timeout=30).json()
    slept = launch(cli, "architect")
    assert "Put po to sleep (level 2)" in slept["stderr"] and asleep(ws, "po")

    held: list[dict] = []  # type: ignore[type-arg]

    def ask() -> None:
        reply = requests.post(ws.url("po") + "/v1/completions", json=body, timeout=60)
        held.append(reply.json())

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive() and held == []  # queued by the sleeping engine, not refused
    woke = launch(cli, "po")
    thread.join(30)

    assert woke["switch"] == "hot" and "Woke po (level 2)" in woke["stderr"]
    text = held[0]["choices"][0]["text"]
    assert text == reference["choices"][0]["text"] and "!!!!!!" not in text
    assert counts(ws, "po")["garbage"] == 0 and counts(ws, "po")["reloads"] == 1


def test_a_reload_that_answers_differently_restarts_the_agent_cold(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    ws = standin_workspace
    path = ws.root / "agents" / "po.yaml"
    path.write_text(path.read_text() + "sleep_level: 2\n")
    make_sleepy(ws, cli, "po", "architect")
    ws.set_standin_env("po", {**WAKE, "STANDIN_RELOAD_BROKEN": "1"})
    launch(cli, "po")
    launch(cli, "architect")
    before = container_ids(ws)["po"]
    result = launch(cli, "po")
    said = " ".join(result["stderr"].split())
    assert result["switch"] == "cold"
    assert "po answers differently after its level-2 reload" in said
    assert container_ids(ws)["po"] != before
