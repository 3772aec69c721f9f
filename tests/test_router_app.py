"""The router's routes over real HTTP, with the stand-in as a host process and a fake switcher
(no Docker): keys, errors in OpenAI's shape, status, metrics, logging, the CLI's refusals."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from agent_manager.router.app import build_app
from agent_manager.router.catalog import Catalog, Target
from agent_manager.router.config import RouterConfig
from tests.fakes.switcher import FakeSwitcher
from tests.router_server import Router, serving
from tests.standin.process import StandinProcess, free_port, run_standin

PROMPT = [{"role": "user", "content": "a secret prompt about dragons"}]


@pytest.fixture(scope="module")
def po_standin() -> Iterator[StandinProcess]:
    """po, served by the stand-in, requiring its own key (as `api_key_env: PO_KEY` makes it)."""
    args = ["Qwen/Qwen2.5-7B-Instruct-AWQ", "--served-model-name", "po"]
    with run_standin(args, env={"VLLM_API_KEY": "po-secret"}) as standin:
        yield standin


def router_for(po: StandinProcess, **options: Any) -> Any:
    targets = [
        Target("po", "po", po.url, "PO_KEY", 32768),
        Target("architect", "architect", f"http://127.0.0.1:{free_port()}", None, 8192),
    ]
    switcher = FakeSwitcher(seconds=0.0)
    return serving(build_app(RouterConfig(**options), Catalog(lambda: targets), switcher))


def chat(router: Router, model: str = "po", **options: Any) -> str:
    answer = router.client(**options).chat.completions.create(
        model=model, messages=PROMPT, max_tokens=3
    )
    return answer.choices[0].message.content or ""


def test_the_agents_own_key_is_added_upstream(
    po_standin: StandinProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PO_KEY", "po-secret")
    with router_for(po_standin) as router:
        assert chat(router)  # the client sent no key of po's; the router added it
        raw = httpx.post(
            router.url + "/v1/chat/completions",
            json={"model": "po", "messages": PROMPT, "max_tokens": 2},
        )
        assert "po-secret" not in raw.text and "po-secret" not in str(raw.headers)


def test_a_router_key_is_required_on_every_route_but_health(
    po_standin: StandinProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PO_KEY", "po-secret")
    monkeypatch.setenv("ROUTER_KEY", "team-key")
    with router_for(po_standin, api_key_env="ROUTER_KEY") as router:
        assert httpx.get(router.url + "/health").status_code == 200
        with pytest.raises(openai.AuthenticationError) as refused:
            chat(router, api_key="wrong")
        assert "wrong API key for this router" in refused.value.message
        assert httpx.get(router.url + "/router/status").status_code == 401
        assert chat(router, api_key="team-key")


def test_unknown_models_get_404_naming_the_models_that_exist(po_standin: StandinProcess) -> None:
    with router_for(po_standin) as router:
        with pytest.raises(openai.NotFoundError) as unknown:
            chat(router, model="qa")
        assert unknown.value.message.endswith(
            "The model 'qa' does not exist. Models: architect, po."
        )
        assert unknown.value.body["type"] == "NotFoundError"  # type: ignore[index]


def test_an_agent_that_refuses_connections_gets_503_naming_it(po_standin: StandinProcess) -> None:
    with router_for(po_standin) as router:
        with pytest.raises(openai.InternalServerError) as refused:
            chat(router, model="architect")
        assert refused.value.status_code == 503
        assert "architect does not accept connections" in refused.value.message


def test_a_failure_inside_the_router_is_a_500_in_openais_shape_and_it_keeps_serving(
    po_standin: StandinProcess, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proxied POSTs bypass Starlette's error middleware: the router's own net must hold."""
    monkeypatch.setenv("PO_KEY", "po-secret")
    targets = [
        Target("po", "po", po_standin.url, "PO_KEY", 32768),
        Target("qa", "qa", "http://[::1", None, 8192),  # httpx refuses this URL
    ]
    app = build_app(RouterConfig(), Catalog(lambda: targets), FakeSwitcher(seconds=0.0))
    with serving(app) as router:
        with pytest.raises(openai.InternalServerError) as failed:
            chat(router, model="qa")
        assert failed.value.status_code == 500
        assert "The router failed on this request; see its log." in failed.value.message
        assert chat(router, model="po")
        wrong_method = httpx.get(router.url + "/v1/chat/completions")
        assert wrong_method.status_code == 405
    assert "the router failed on POST /v1/chat/completions" in caplog.text


def test_status_and_metrics_count_requests_switches_and_queues(
    po_standin: StandinProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PO_KEY", "po-secret")
    with router_for(po_standin) as router:
        chat(router)
        chat(router)
        status = router.status()
        assert status["active"] == "po" and status["switches"] == 1
        assert status["queue"] == {"po": 0, "architect": 0}
        assert status["last_switch"]["agent"] == "po" and status["last_switch"]["ok"] is True
        models = {m.id: m.model_extra for m in router.client().models.list().data}
        assert models["po"] == {"agent": "po", "state": "ready", "max_model_len": 32768}
        assert models["architect"]["state"] == "stopped"  # type: ignore[index]
        metrics = httpx.get(router.url + "/metrics").text
        assert 'agent_manager_router_requests_total{agent="po",code="200"} 2.0' in metrics
        assert 'agent_manager_router_switches_total{agent="po",outcome="ready"} 1.0' in metrics
        assert 'agent_manager_router_queue_depth{agent="architect"} 0.0' in metrics
        assert "agent_manager_router_switch_duration_seconds_count 1.0" in metrics
        assert 'agent_manager_router_upstream_latency_seconds_count{agent="po"} 2.0' in metrics


@pytest.mark.parametrize(("debug", "access_log"), [(False, False), (False, True), (True, True)])
def test_requests_are_logged_only_when_asked_and_bodies_only_with_debug(
    po_standin: StandinProcess,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    debug: bool,
    access_log: bool,
) -> None:
    monkeypatch.setenv("PO_KEY", "po-secret")
    caplog.set_level(logging.DEBUG, logger="agent_manager.router")
    with router_for(po_standin, debug=debug, access_log=access_log) as router:
        chat(router)
    assert ("POST /v1/chat/completions model=po -> 200" in caplog.text) is access_log
    assert ("dragons" in caplog.text) is debug


def test_serve_off_loopback_without_a_key_refuses_to_start(cli: Any) -> None:
    refused = cli("serve", "--host", "0.0.0.0")
    assert refused.code == 2
    assert "Refusing to serve on 0.0.0.0 without an API key" in refused.stderr
    assert "--api-key-env" in refused.stderr
    unset = cli("serve", "--host", "0.0.0.0", "--api-key-env", "NO_SUCH_ROUTER_KEY")
    assert unset.code == 2
    assert "NO_SUCH_ROUTER_KEY is not set" in unset.stderr


def test_idle_stop_takes_a_duration(cli: Any) -> None:
    wrong = cli("serve", "--idle-stop", "soon")
    assert wrong.code == 2 and "--idle-stop 'soon' is not a duration" in wrong.stderr


def test_a_stream_past_the_drain_limit_ends_with_a_503_event_saying_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = ["Qwen/Qwen2.5-7B-Instruct-AWQ", "--served-model-name", "po"]
    with run_standin(args, env={"STANDIN_TOKENS_PER_SECOND": "10"}) as slow_po:
        with router_for(slow_po, drain_timeout_s=0.3) as router:
            body = {"model": "po", "messages": PROMPT, "max_tokens": 100, "stream": True}
            with httpx.stream("POST", router.url + "/v1/chat/completions", json=body) as stream:
                lines = stream.iter_lines()
                assert next(line for line in lines if line.startswith("data:"))
                # architect waits; po's stream outlives the drain limit and is cut
                other = {"model": "architect", "messages": PROMPT, "max_tokens": 1}
                with ThreadPoolExecutor(max_workers=1) as pool:
                    pool.submit(httpx.post, router.url + "/v1/chat/completions", json=other)
                    rest = [line for line in lines if line.startswith("data:")]
            assert len(rest) < 50
            assert rest[-1] == "data: [DONE]"  # clients stop reading there
            assert '"code": 503' in rest[-2] and "drain limit" in rest[-2]
            assert "switches from po to architect" in rest[-2]


def test_a_client_that_leaves_before_a_plain_answer_frees_the_agent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = ["Qwen/Qwen2.5-7B-Instruct-AWQ", "--served-model-name", "po"]
    with run_standin(args, env={"STANDIN_TOKENS_PER_SECOND": "20"}) as slow_po:
        with router_for(slow_po) as router:
            body = {"model": "po", "messages": PROMPT, "max_tokens": 40}  # 2 s, not streamed
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(router.url + "/v1/chat/completions", json=body, timeout=0.5)
            assert wait_for_aborts(slow_po.url, 1)
            assert router.status()["in_flight"] == 0


def wait_for_aborts(url: str, count: int, timeout: float = 10) -> bool:
    """The stand-in counts a request whose client left as finished_reason="abort"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f'finished_reason="abort"}} {count:.1f}' in httpx.get(url + "/metrics").text:
            return True
        time.sleep(0.1)
    return False
