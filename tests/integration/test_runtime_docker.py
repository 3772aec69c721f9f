"""launch / stop / status / logs on the real Docker Engine, with the vLLM stand-in image.

The stand-in runs the generated compose file through the test override (no GPU), logs what
vLLM 0.33.0 logs and fails the way it fails (STANDIN_FAIL).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO, CliResult
from tests.integration.conftest import StandinWorkspace

Cli = Callable[..., CliResult]
AGENT_MANAGER = str(Path(sys.executable).parent / "agent-manager")


def our_containers() -> list[tuple[str, str]]:
    """(agent, state) of every container of this test's instance."""
    instance = os.environ["AGENT_MANAGER_INSTANCE"]
    listed = subprocess.run(
        [
            "docker", "ps", "-a", "--filter", "label=io.agent-manager.agent", "--format",
            '{{.Label "com.docker.compose.project"}} {{.Label "io.agent-manager.agent"}} '
            "{{.State}}",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = []
    for line in listed.stdout.splitlines():
        project, agent, state = line.split(" ")
        if project.startswith(instance + "-"):
            found.append((agent, state))
    return sorted(found)


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [AGENT_MANAGER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def test_launch_returns_once_the_served_name_answers(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    result = cli("launch", "po")

    assert result.code == 0, result.output
    assert "po is ready in" in result.stdout
    assert f"endpoint:  {standin_workspace.url('po')}/v1" in result.stdout
    models = requests.get(standin_workspace.url("po") + "/v1/models", timeout=5).json()
    assert [card["id"] for card in models["data"]] == ["po"]
    # Phases logged well before the server listens. The last one ("server up") races with the
    # /health poll by design: readiness is decided by HTTP, not by the log.
    for phase in ("starting vLLM", "weights loaded (5.42 GiB)"):
        assert phase in result.stderr


def test_switch_po_to_architect_leaves_only_architect_running(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    assert cli("launch", "po").code == 0
    switched = cli("launch", "architect", "--json")

    assert switched.code == 0, switched.output
    data = json.loads(switched.stdout)
    assert data["stopped"] == ["po"] and data["ready"] is True
    assert data["timings"]["old_gone"] <= data["timings"]["up_issued"]
    assert our_containers() == [("architect", "running")]
    assert "Stopped po in" in switched.stderr
    assert "NVML unavailable: not waiting for GPU memory." in switched.stderr


def test_ten_concurrent_launches_end_with_exactly_one_agent(
    standin_workspace: StandinWorkspace,
) -> None:
    for agent in standin_workspace.agents:
        standin_workspace.set_standin_env(agent, {"STANDIN_LOAD_SECONDS": "0.3"})
    agents = ["po", "architect", "developer"] * 3 + ["po"]
    processes = [spawn("launch", agent, "--timeout", "240") for agent in agents]
    outputs = [process.communicate(timeout=300) for process in processes]

    codes = [process.returncode for process in processes]
    everything = "\n".join(out + err for out, err in outputs)
    assert codes == [0] * 10, everything
    assert "already in use" not in everything
    running = our_containers()
    assert len(running) == 1 and running[0][1] == "running", running
    agent = running[0][0]
    answer = requests.get(standin_workspace.url(agent) + "/v1/models", timeout=5).json()
    assert [card["id"] for card in answer["data"]] == [agent]
    assert "Waiting for `agent-manager launch" in everything  # someone waited for the lock


@pytest.mark.parametrize(
    ("fail", "says"),
    [
        ("oom", "CUDA ran out of memory while loading the model weights"),
        ("kv", "No GPU memory is left for the KV cache"),
        ("context", "vLLM computed that at most 16384 tokens fit"),
        ("free-memory", "Only 10.2 of 15.6 GiB is free on cuda:0"),
        ("gated", "is gated or private"),
        ("notfound", "does not exist on Hugging Face"),
        ("max-len", "is longer than the model supports"),
        ("crash", "vLLM exited with code 1 for a reason agent-manager does not know"),
    ],
)
def test_each_simulated_failure_gets_its_diagnosis(
    standin_workspace: StandinWorkspace, cli: Cli, fail: str, says: str
) -> None:
    standin_workspace.set_standin_env("po", {"STANDIN_FAIL": fail, "STANDIN_LOAD_SECONDS": "0.3"})
    result = cli("launch", "po")

    assert result.code == 1, result.output
    assert says in " ".join(result.stderr.split())
    assert "What to do:" in result.stderr
    assert "Full log: agent-manager logs po" in result.stderr
    # the crashed container stays, for `status` and `logs`
    assert our_containers() == [("po", "exited")]


def test_unknown_vllm_argument_is_named(standin_workspace: StandinWorkspace, cli: Cli) -> None:
    # The override may add anything; an argv vLLM 0.33 refuses must be explained.
    override = standin_workspace.override_file("po")
    text = override.read_text().replace(
        "    image:", '    command: ["Qwen/X", "--swap-space", "4"]\n    image:', 1
    )
    override.write_text(text)
    result = cli("launch", "po", "--json")

    assert result.code == 1
    failure = json.loads(result.stdout)["failure"]
    assert failure["kind"] == "unknown-argument"
    assert "--swap-space 4" in failure["summary"]


def test_status_json_shape_and_a_crashed_agent(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    assert cli("launch", "po").code == 0
    data = json.loads(cli("status", "--json").stdout)
    assert data["running"] == "po"
    (row,) = data["agents"]
    assert row["health"] == "ready" and row["state"] == "running"
    assert row["endpoint"] == standin_workspace.url("po") + "/v1"
    assert row["served_name"] == "po"
    assert row["uptime_s"] >= 0
    assert row["requests_running"] == 0 and row["requests_waiting"] == 0
    assert 0.0 <= row["kv_cache_usage"] <= 1.0
    assert row["model_cache"] == "missing"  # nothing downloaded into this test's HF_HOME

    standin_workspace.set_standin_env("po", {"STANDIN_FAIL": "kv", "STANDIN_LOAD_SECONDS": "0.2"})
    assert cli("launch", "po").code == 1
    status = cli("status")
    assert "No agent is running." in status.stdout
    assert "po crashed: No GPU memory is left for the KV cache" in " ".join(status.stdout.split())


def test_logs_of_the_running_and_of_the_crashed_container(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    assert cli("launch", "po").code == 0
    tail = cli("logs", "po", "-n", "1")
    everything = cli("logs", "po").stdout
    assert tail.code == 0
    assert tail.stdout.count("\n") == 1
    assert tail.stdout in everything
    assert "Starting to load model" in everything
    assert cli("logs", "po", "--since", "1h").stdout.count("\n") > 5

    standin_workspace.set_standin_env("po", {"STANDIN_FAIL": "oom", "STANDIN_LOAD_SECONDS": "0.2"})
    assert cli("launch", "po").code == 1
    crashed = cli("logs", "po")
    assert "Failed to load model - not enough GPU memory" in crashed.stdout
    assert "po is not running (exited with code 1)" in crashed.stderr


def test_logs_follow_ends_when_the_container_stops(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    assert cli("launch", "po").code == 0
    follower = spawn("logs", "po", "-f", "-n", "2")
    time.sleep(1.0)
    assert follower.poll() is None, "still following while po runs"
    assert cli("stop", "po").code == 0
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert out.count("\n") > 2, "the last 2 lines, then what came while following"
    assert out.rstrip().endswith("Application shutdown complete.")


def test_logs_follow_ends_cleanly_on_ctrl_c(standin_workspace: StandinWorkspace, cli: Cli) -> None:
    assert cli("launch", "po").code == 0
    follower = spawn("logs", "po", "-f")
    time.sleep(1.5)
    follower.send_signal(signal.SIGINT)
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0
    assert "Traceback" not in err
    assert "Application startup complete." in out


def test_stop_is_idempotent_and_says_what_it_stopped(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    assert cli("launch", "po").code == 0
    first = cli("stop")
    again = cli("stop")
    named = cli("stop", "po")

    assert first.code == 0 and "Stopped po (container" in first.stdout
    assert again.code == 0 and again.stdout.strip() == "Nothing to stop: no agent is running."
    assert named.code == 0 and named.stdout.strip() == "Nothing to stop: po has no container."
    assert our_containers() == []


def test_stop_all_removes_crashed_containers(standin_workspace: StandinWorkspace, cli: Cli) -> None:
    standin_workspace.set_standin_env("po", {"STANDIN_FAIL": "crash", "STANDIN_LOAD_SECONDS": "0"})
    assert cli("launch", "po").code == 1
    assert cli("stop").stdout.strip() == "Nothing to stop: no agent is running."
    assert our_containers() == [("po", "exited")]
    assert "Stopped po" in cli("stop", "--all").stdout
    assert our_containers() == []


def test_no_wait_returns_before_the_model_is_loaded(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    standin_workspace.set_standin_env("po", {"STANDIN_LOAD_SECONDS": "20"})
    result = cli("launch", "po", "--no-wait", "--json")

    assert result.code == 0, result.output
    assert json.loads(result.stdout)["ready"] is False
    assert our_containers() == [("po", "running")]
    assert cli("status", "--json").stdout.count('"health": "starting"') == 1


def test_timeout_leaves_the_container_and_says_how_to_follow_it(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    standin_workspace.set_standin_env("po", {"STANDIN_LOAD_SECONDS": "30"})
    result = cli("launch", "po", "--timeout", "3")

    assert result.code == 1
    assert "po is not ready after 3 s" in result.stderr
    assert "agent-manager logs po -f" in result.stderr
    assert our_containers() == [("po", "running")]


def test_ctrl_c_during_launch_leaves_the_container(standin_workspace: StandinWorkspace) -> None:
    standin_workspace.set_standin_env("po", {"STANDIN_LOAD_SECONDS": "30"})
    launcher = spawn("launch", "po")
    # Interrupt the state under test, following a loading agent, however loaded the machine:
    # wait for launch to print the loading phase (one line per phase when not a terminal).
    said: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [said.put(line) for line in launcher.stderr or ()])
    reader.start()
    seen: list[str] = []
    while not any("loading weights" in line for line in seen):
        seen.append(said.get(timeout=120))
        assert "is ready" not in seen[-1], seen
    launcher.send_signal(signal.SIGINT)
    launcher.wait(timeout=30)
    reader.join(timeout=30)
    while not said.empty():
        seen.append(said.get())
    err = "".join(seen)

    assert launcher.returncode == 130, err
    assert "Stopped following po; its container is left as it is." in err
    assert "agent-manager stop po" in err
    assert "Traceback" not in err
    assert our_containers() == [("po", "running")]


def test_port_taken_by_another_program_is_named(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", standin_workspace.ports["po"]))
        holder.listen()
        result = cli("launch", "po")

    assert result.code == 1
    assert f"Port {standin_workspace.ports['po']} on 127.0.0.1" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr
    assert our_containers() == []


def test_docker_down_gives_a_clear_message(
    standin_workspace: StandinWorkspace, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    for command in (["launch", "po"], ["status"], ["stop"], ["logs", "po"]):
        result = cli(*command)
        assert result.code == 1, command
        said = " ".join(result.stderr.split())
        assert "Cannot reach the Docker Engine: nothing at unix:///nonexistent/docker.sock" in said
        assert "sudo systemctl start docker" in said
        assert "Traceback" not in result.stderr


def container_id(name: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "--format", "{{.Id}}", name],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def test_relaunching_the_running_agent_keeps_it_unless_its_config_changed(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    first = json.loads(cli("launch", "po", "--json").stdout)
    before = container_id(first["container"])

    again = cli("launch", "po", "--json")
    assert again.code == 0 and json.loads(again.stdout)["stopped"] == []
    assert container_id(first["container"]) == before

    standin_workspace.set_standin_env("po", {"STANDIN_LOAD_SECONDS": "0.2"})
    changed = cli("launch", "po", "--json")
    assert changed.code == 0, changed.output
    assert json.loads(changed.stdout)["stopped"] == ["po"]
    assert container_id(first["container"]) != before
    assert our_containers() == [("po", "running")]


def test_logs_since_a_recent_moment_skips_older_lines(
    standin_workspace: StandinWorkspace, cli: Cli
) -> None:
    assert cli("launch", "po").code == 0
    time.sleep(1.2)
    requests.get(standin_workspace.url("po") + "/v1/models", timeout=5)
    recent = cli("logs", "po", "--since", "1s")

    assert recent.code == 0
    assert "Starting to load model" not in recent.stdout
    assert '"GET /v1/models HTTP/1.1" 200' in recent.stdout
