"""`agent-manager serve` on the real Docker Engine with the stand-in, spoken to by the real
`openai` client. The router runs in-process (a uvicorn thread) except where signals matter.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from agent_manager.router.app import build_app
from agent_manager.router.catalog import Catalog, workspace_targets
from agent_manager.router.config import RouterConfig
from agent_manager.router.switcher import DockerSwitcher
from agent_manager.spec.workspace import resolve_workspace
from tests.conftest import REPO, CliResult
from tests.integration.conftest import StandinWorkspace
from tests.integration.test_runtime_docker import our_containers
from tests.router_server import Router, serving
from tests.standin.process import free_port, wait_router

AGENT_MANAGER = str(Path(sys.executable).parent / "agent-manager")
PROMPT = [{"role": "user", "content": "plan the sprint"}]


@contextmanager
def running_router(**options: Any) -> Iterator[Router]:
    ws = resolve_workspace()
    config = RouterConfig(watch_period_s=0.5, **options)
    app = build_app(config, Catalog(lambda: workspace_targets(ws)), DockerSwitcher(ws, 120))
    with serving(app) as router:
        yield router


@contextmanager
def watching_containers() -> Iterator[list[int]]:
    """Counts our running containers every 0.2 s: the list holds the largest count seen."""
    peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            running = [agent for agent, state in our_containers() if state == "running"]
            peak[0] = max(peak[0], len(running))
            done.wait(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join(5)


def ask(client: openai.OpenAI, model: str, tokens: int = 4) -> str:
    answer = client.chat.completions.create(model=model, messages=PROMPT, max_tokens=tokens)
    return answer.choices[0].message.content or ""


def test_models_then_po_architect_po_makes_two_switches_and_never_two_agents(
    standin_workspace: StandinWorkspace,
) -> None:
    with running_router() as router, watching_containers() as peak:
        client = router.client()
        listed = {m.id: m for m in client.models.list().data}
        # developer's alias `dev` (agents/developer.yaml) has its own card
        assert sorted(listed) == ["architect", "dev", "developer", "po"]
        assert all(m.model_extra and m.model_extra["state"] == "stopped" for m in listed.values())
        assert ask(client, "po") and ask(client, "architect") and ask(client, "po")
        status = router.status()
        assert status["switches"] == 3  # po from nothing, then architect, then po: two switches
        assert status["active"] == "po" and status["last_switch"]["ok"] is True
        assert [agent for agent, state in our_containers() if state == "running"] == ["po"]
    assert peak[0] == 1


def test_streaming_through_the_router_yields_the_same_chunks_as_the_agent(
    standin_workspace: StandinWorkspace,
) -> None:
    def contents(client: openai.OpenAI) -> list[str]:
        stream = client.chat.completions.create(
            model="po", messages=PROMPT, max_tokens=12, stream=True
        )
        return [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]

    with running_router() as router:
        through = contents(router.client())
        direct = openai.OpenAI(
            base_url=standin_workspace.url("po") + "/v1", api_key="unused", max_retries=0
        )
        assert through == contents(direct)
        assert len(through) == 13  # the role chunk, then 12 tokens


def test_sixty_concurrent_mixed_requests_all_succeed_within_the_switch_bound(
    standin_workspace: StandinWorkspace,
) -> None:
    agents = ["architect", "developer", "po"] * 20
    with running_router() as router:
        client = router.client(timeout=120)
        with ThreadPoolExecutor(max_workers=60) as pool:
            answers = list(pool.map(lambda agent: ask(client, agent), agents))
        assert all(answers)
        # All 60 queue at once: one switch per agent, then each agent's queue is released.
        assert router.status()["switches"] <= 3


def test_an_agent_that_fails_to_start_answers_503_with_the_diagnosis_and_others_work(
    standin_workspace: StandinWorkspace,
) -> None:
    standin_workspace.set_standin_env("po", {"STANDIN_FAIL": "oom"})
    with running_router() as router:
        client = router.client()
        with pytest.raises(openai.InternalServerError) as failed:
            ask(client, "po")
        assert failed.value.status_code == 503
        message = failed.value.message
        assert "po did not start: CUDA ran out of memory while loading" in message
        assert "max_context" in message  # the fix comes with the diagnosis
        assert ask(client, "architect")
        assert router.status()["active"] == "architect"


def test_a_client_that_disconnects_mid_stream_cancels_the_request_upstream(
    standin_workspace: StandinWorkspace,
) -> None:
    standin_workspace.set_standin_env("po", {"STANDIN_TOKENS_PER_SECOND": "20"})
    with running_router() as router:
        body = {"model": "po", "messages": PROMPT, "max_tokens": 200, "stream": True}
        with httpx.stream("POST", router.url + "/v1/chat/completions", json=body) as response:
            lines = response.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))
        # The client is gone after 1 of 200 tokens; the stand-in counts an aborted request.
        deadline = time.monotonic() + 10
        metrics = ""
        while time.monotonic() < deadline:
            metrics = httpx.get(standin_workspace.url("po") + "/metrics").text
            if 'finished_reason="abort"} 1.0' in metrics:
                break
            time.sleep(0.1)
        assert 'finished_reason="abort"} 1.0' in metrics


def test_a_full_queue_gives_429_with_retry_after_and_an_unknown_model_404(
    standin_workspace: StandinWorkspace,
) -> None:
    standin_workspace.set_standin_env("po", {"STANDIN_LOAD_SECONDS": "3"})
    with running_router(max_queue=1) as router:
        client = router.client()
        with pytest.raises(openai.NotFoundError) as unknown:
            ask(client, "qa")
        assert "The model 'qa' does not exist" in unknown.value.message
        assert "architect, dev, developer, po" in unknown.value.message
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(ask, client, "po")  # waits while po starts
            deadline = time.monotonic() + 10
            while router.status()["queue"]["po"] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            body = {"model": "po", "messages": PROMPT, "max_tokens": 2}
            full = httpx.post(router.url + "/v1/chat/completions", json=body)
            assert full.status_code == 429
            assert int(full.headers["Retry-After"]) >= 1
            assert full.json()["error"]["type"] == "RateLimitError"
            assert first.result(timeout=60)


def test_idle_stop_stops_the_agent_and_the_next_request_starts_it_again(
    standin_workspace: StandinWorkspace,
) -> None:
    with running_router(idle_stop_s=1.0) as router:
        client = router.client()
        assert ask(client, "po")
        deadline = time.monotonic() + 30
        while any(state == "running" for _, state in our_containers()):
            assert time.monotonic() < deadline, "the idle agent was not stopped"
            time.sleep(0.2)
        assert ask(client, "po")
        assert router.status()["switches"] == 2


def test_sigterm_drains_in_flight_requests_and_exits_0(
    standin_workspace: StandinWorkspace, cli: Callable[..., CliResult]
) -> None:
    standin_workspace.set_standin_env("po", {"STANDIN_TOKENS_PER_SECOND": "20"})
    port = free_port()
    router = subprocess.Popen(
        [AGENT_MANAGER, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_router(router, url)
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        stream = client.chat.completions.create(
            model="po", messages=PROMPT, max_tokens=30, stream=True
        )
        pieces = [next(iter(stream))]
        shown = cli("status")
        assert f"Router: {url}/v1 (pid {router.pid})" in shown.stdout, shown.output
        assert "active agent: po" in shown.stdout
        router.send_signal(signal.SIGTERM)
        pieces += list(stream)  # the stream runs to its end after SIGTERM
        tokens = [p for p in pieces if p.choices and p.choices[0].delta.content]
        assert len(tokens) == 30
        assert router.wait(timeout=30) == 0
    finally:
        if router.poll() is None:
            router.kill()
        output = router.communicate()[0]
    assert "shutting down" in output
    from agent_manager.router.state_file import router_file

    assert not router_file(standin_workspace).exists()
    assert [a for a, state in our_containers() if state == "running"] == ["po"]  # left running
    assert "Router" not in cli("status").stdout


def test_the_router_switches_hot_between_sleep_agents_and_never_routes_to_a_sleeper(
    standin_workspace: StandinWorkspace, cli: Callable[..., CliResult]
) -> None:
    from tests.integration.test_hot_switch_docker import container_ids, counts, make_sleepy

    ws = standin_workspace
    make_sleepy(ws, cli, "po", "architect")
    with running_router() as router, watching_containers():
        client = router.client()
        assert ask(client, "po") and ask(client, "architect")
        ids = container_ids(ws)
        for agent in ("po", "architect", "po"):
            assert ask(client, agent)
            # Docker says both containers run; the watch must still see the awake one only.
            time.sleep(1.2)
            states = {m.id: (m.model_extra or {})["state"] for m in client.models.list().data}
            other = "architect" if agent == "po" else "po"
            assert (states[agent], states[other]) == ("ready", "asleep")
            assert ask(client, agent)  # routed to the awake engine, not the sleeper
        assert container_ids(ws) == ids  # woken, never restarted
        assert counts(ws, "po")["loads"] == 1 and counts(ws, "architect")["loads"] == 1
        assert counts(ws, "po")["wakes"] == 2


def test_every_route_reaches_its_agent_with_one_switch_and_a_pinned_id_dies_with_its_agent(
    standin_workspace: StandinWorkspace,
) -> None:
    """By the alias `dev` (agents/developer.yaml): every generate route reaches developer with
    `model` rewritten, after one switch; an embeddings call to a chat agent is refused before
    any switch; a response id made by developer is a 404 saying so once po took the GPU."""
    bodies = {
        "/v1/chat/completions": {"messages": PROMPT, "max_tokens": 2},
        "/v1/completions": {"prompt": "plan", "max_tokens": 2},
        "/v1/responses": {"input": "plan", "max_output_tokens": 2},
        "/v1/messages": {"messages": PROMPT, "max_tokens": 2},
        "/v1/messages/count_tokens": {"messages": PROMPT},
        "/v1/chat/completions/batch": {"messages": [PROMPT]},
        "/tokenize": {"prompt": "plan the sprint"},
        "/detokenize": {"tokens": [1, 2]},
    }
    # vLLM keeps responses only with this set (a spec's `env` passes it)
    standin_workspace.set_standin_env("developer", {"VLLM_ENABLE_RESPONSES_API_STORE": "1"})
    with running_router() as router, watching_containers() as peak:
        for path, body in bodies.items():
            answer = httpx.post(router.url + path, json={"model": "dev", **body}, timeout=120)
            assert answer.status_code == 200, (path, answer.text)
            assert answer.json().get("model", "developer") == "developer", path
        assert router.status()["switches"] == 1
        made = httpx.post(
            router.url + "/v1/responses", json={"model": "dev", "input": "plan"}
        ).json()
        assert httpx.get(f"{router.url}/v1/responses/{made['id']}").status_code == 200
        refused = httpx.post(router.url + "/v1/embeddings", json={"model": "po", "input": "x"})
        assert refused.status_code == 400 and "'task: pooling'" in refused.text
        nowhere = httpx.post(router.url + "/v1/nowhere", json={"model": "po"})
        assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == 404
        assert router.status()["switches"] == 1  # neither refusal switched
        assert ask(router.client(), "po")
        gone = httpx.get(f"{router.url}/v1/responses/{made['id']}")
        assert gone.status_code == 404
        assert "was made by developer, which has been stopped since" in gone.text
        assert router.status()["switches"] == 2
    assert peak[0] == 1


def test_an_idle_sleep_agent_is_put_to_sleep_and_woken_by_the_next_request(
    standin_workspace: StandinWorkspace, cli: Callable[..., CliResult]
) -> None:
    from tests.integration.test_hot_switch_docker import asleep, counts, make_sleepy

    ws = standin_workspace
    make_sleepy(ws, cli, "po")
    path = ws.root / "agents" / "po.yaml"
    path.write_text(path.read_text() + "idle_minutes: 0.02\n")  # 1.2 s, from the spec
    assert cli("compose").code == 0
    with running_router() as router:
        client = router.client()
        assert ask(client, "po")
        assert router.status()["idle"]["after_s"] == pytest.approx(1.2)
        deadline = time.monotonic() + 30
        while not asleep(ws, "po"):
            assert time.monotonic() < deadline, "the idle sleep agent was not put to sleep"
            time.sleep(0.2)
        assert [agent for agent, state in our_containers() if state == "running"] == ["po"]
        assert ask(client, "po")
        assert counts(ws, "po")["loads"] == 1 and counts(ws, "po")["wakes"] == 1
