"""Every vLLM route through the router, over real HTTP, with stand-ins as host processes and a
fake switcher: which agent a request reaches, `model` rewritten to the served name, routes a
task does not serve refused before any switch, ids pinned to their agent, errors in the
caller's dialect, and `/v1/models` with aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agent_manager.router.app import build_app
from agent_manager.router.catalog import Catalog, Target
from agent_manager.router.config import RouterConfig
from agent_manager.router.routes import GENERATE, POOLING, ROUTES, TRANSCRIPTION
from tests.fakes.switcher import FakeSwitcher
from tests.router_server import Router, serving
from tests.standin.process import StandinProcess, run_standin

MESSAGES = [{"role": "user", "content": "plan the sprint"}]


@pytest.fixture(scope="module")
def standins() -> Iterator[dict[str, StandinProcess]]:
    """po (served as product-owner), an embedder (pooling) and a scribe (whisper)."""
    with (
        run_standin(
            ["Qwen/Qwen2.5-7B-Instruct", "--served-model-name", "product-owner"],
            env={"VLLM_ENABLE_RESPONSES_API_STORE": "1"},  # vLLM keeps no response without it
        ) as po,
        run_standin(
            ["BAAI/bge-m3", "--served-model-name", "embedder", "--runner", "pooling"]
        ) as embedder,
        run_standin(["openai/whisper-small", "--served-model-name", "scribe"]) as scribe,
    ):
        yield {"po": po, "embedder": embedder, "scribe": scribe}


class Team:
    def __init__(self, router: Router, switcher: FakeSwitcher):
        self.router = router
        self.switcher = switcher

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.router.url + path, json=body, timeout=30)


@pytest.fixture
def team(standins: dict[str, StandinProcess]) -> Iterator[Team]:
    targets = [
        Target("po", "product-owner", standins["po"].url, None, 32768, aliases=("gpt-4o",)),
        Target("embedder", "embedder", standins["embedder"].url, None, "auto", task="pooling"),
        Target("scribe", "scribe", standins["scribe"].url, None, None, task="transcription"),
    ]
    switcher = FakeSwitcher(seconds=0.0)
    app = build_app(RouterConfig(), Catalog(lambda: targets), switcher)
    with serving(app) as router:
        yield Team(router, switcher)


def test_the_route_table_has_every_model_route_of_vllm_0_33_once():
    assert len(ROUTES) == len(GENERATE) + len(POOLING) + len(TRANSCRIPTION)
    assert {"/v1/responses", "/v1/messages", "/v1/messages/count_tokens", "/tokenize",
            "/detokenize", "/v1/chat/completions/batch"} <= set(GENERATE)  # fmt: skip
    assert {"/v1/embeddings", "/pooling", "/classify", "/score", "/rerank"} <= set(POOLING)
    assert ROUTES["/v1/messages"].dialect == "anthropic"
    assert ROUTES["/v1/chat/completions"].dialect == "openai"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 2}),
        ("/v1/completions", {"prompt": "hi", "max_tokens": 2}),
        ("/v1/responses", {"input": "hi", "max_output_tokens": 2}),
        ("/v1/messages", {"messages": MESSAGES, "max_tokens": 2}),
        ("/v1/messages/count_tokens", {"messages": MESSAGES}),
        ("/v1/chat/completions/batch", {"messages": [MESSAGES]}),
        ("/tokenize", {"prompt": "hello there"}),
        ("/detokenize", {"tokens": [1, 2]}),
    ],
)
@pytest.mark.parametrize("name", ["po", "product-owner", "gpt-4o"])
def test_every_generate_route_reaches_po_by_any_of_its_names_with_one_switch(
    team: Team, path: str, body: dict[str, Any], name: str
):
    answer = team.post(path, {"model": name, **body})
    assert answer.status_code == 200, answer.text
    if "model" in answer.json():  # the stand-in answers with the name it was asked for
        assert answer.json()["model"] == "product-owner"
    assert team.switcher.switches == ["po"]


@pytest.mark.parametrize("path", POOLING)
def test_pooling_routes_reach_the_pooling_agent(team: Team, path: str):
    answer = team.post(path, {"model": "embedder", "input": "hello"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["route"] == path and answer.json()["model"] == "embedder"
    assert team.switcher.switches == ["embedder"]


def test_an_embeddings_call_to_a_chat_agent_is_refused_without_a_switch(team: Team):
    answer = team.post("/v1/embeddings", {"model": "gpt-4o", "input": "hello"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "BadRequestError" and error["param"] == "model" and error["code"] == 400
    assert error["message"].startswith("po does not serve /v1/embeddings: its spec says ")
    assert "'task: pooling'" in error["message"]
    assert team.switcher.switches == []


def test_audio_goes_by_the_form_field_and_is_rewritten(team: Team):
    files = {"file": ("a.wav", b"RIFF....WAVE", "audio/wav")}
    for path in TRANSCRIPTION:
        answer = httpx.post(team.router.url + path, data={"model": "scribe"}, files=files)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "scribe"
    refused = httpx.post(team.router.url + TRANSCRIPTION[0], data={"model": "po"}, files=files)
    assert refused.status_code == 400 and "'task: transcription'" in refused.text
    assert team.switcher.switches == ["scribe"]


def test_a_response_id_is_pinned_to_its_agent_and_lost_when_that_agent_stops(team: Team):
    made = team.post("/v1/responses", {"model": "gpt-4o", "input": "hi"}).json()
    streamed = team.post("/v1/responses", {"model": "po", "input": "hi", "stream": True})
    assert streamed.status_code == 200 and "response.completed" in streamed.text
    stream_id = streamed.text.split('"id": "', 1)[1].split('"', 1)[0]
    for response_id in (made["id"], stream_id):
        got = httpx.get(f"{team.router.url}/v1/responses/{response_id}")
        assert got.status_code == 200 and got.json()["id"] == response_id
    cancel = httpx.post(f"{team.router.url}/v1/responses/{made['id']}/cancel")
    assert cancel.status_code == 400  # po's own answer: a finished response cannot be cancelled
    assert "Cannot cancel a synchronous response" in cancel.json()["error"]["message"]
    assert team.post("/v1/embeddings", {"model": "embedder", "input": "x"}).status_code == 200
    gone = httpx.get(f"{team.router.url}/v1/responses/{made['id']}")
    assert gone.status_code == 404
    message = gone.json()["error"]["message"]
    assert f"Response '{made['id']}' was made by po, which has been stopped since" in message
    assert team.switcher.switches == ["po", "embedder"]  # the lookup switched nothing
    unknown = httpx.get(f"{team.router.url}/v1/responses/resp_nobody")
    assert unknown.status_code == 404 and "No response 'resp_nobody'" in unknown.text


def test_a_response_continued_by_another_agent_or_after_its_agent_stopped_is_refused(
    team: Team,
):
    made = team.post("/v1/responses", {"model": "po", "input": "hi"}).json()
    go_on = {"input": "and then?", "previous_response_id": made["id"]}
    assert team.post("/v1/responses", {"model": "po", **go_on}).status_code == 200
    elsewhere = team.post("/v1/responses", {"model": "scribe", **go_on})
    assert elsewhere.status_code == 404
    error = elsewhere.json()["error"]
    assert error["param"] == "previous_response_id"
    assert f"'{made['id']}' was made by po, not scribe" in error["message"]
    assert team.switcher.switches == ["po"]  # refused before any switch
    assert team.post("/v1/embeddings", {"model": "embedder", "input": "x"}).status_code == 200
    lost = team.post("/v1/responses", {"model": "po", **go_on})
    assert lost.status_code == 404 and "which has been stopped since" in lost.text
    assert team.switcher.switches == ["po", "embedder"]
    unknown = team.post("/v1/responses", {"model": "po", "previous_response_id": "resp_x"})
    assert unknown.status_code == 404  # not made through the router: po's own answer
    assert "Response with id 'resp_x' not found." in unknown.json()["error"]["message"]


def test_unknown_paths_and_models_get_json_errors_in_the_callers_dialect(team: Team):
    nowhere = httpx.get(team.router.url + "/v1/nowhere")
    assert nowhere.status_code == 404 and nowhere.json()["error"]["type"] == "NotFoundError"
    wrong = httpx.get(team.router.url + "/v1/chat/completions")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == 405
    openai_404 = team.post("/v1/chat/completions", {"model": "nobody", "messages": MESSAGES})
    assert openai_404.json()["error"]["param"] == "model"
    anthropic_404 = team.post("/v1/messages", {"model": "nobody", "messages": MESSAGES})
    assert anthropic_404.status_code == 404
    assert anthropic_404.json()["type"] == "error"
    assert anthropic_404.json()["error"]["type"] == "not_found_error"
    assert "The model 'nobody' does not exist" in anthropic_404.json()["error"]["message"]


def test_models_lists_aliases_and_only_integer_lengths(team: Team):
    cards = {c["id"]: c for c in httpx.get(team.router.url + "/v1/models").json()["data"]}
    assert sorted(cards) == ["embedder", "gpt-4o", "product-owner", "scribe"]
    assert cards["gpt-4o"]["alias_of"] == "product-owner" and cards["gpt-4o"]["agent"] == "po"
    assert cards["product-owner"]["max_model_len"] == 32768
    assert "max_model_len" not in cards["embedder"]  # 'auto': known only to the engine
    one = httpx.get(team.router.url + "/v1/models/gpt-4o").json()
    assert one["id"] == "gpt-4o" and one["agent"] == "po"
    missing = httpx.get(team.router.url + "/v1/models/nobody")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "model"


def test_the_anthropic_sdk_speaks_to_the_router_with_its_own_key_header(
    standins: dict[str, StandinProcess], monkeypatch: pytest.MonkeyPatch
):
    import anthropic

    monkeypatch.setenv("TEAM_KEY", "team-secret")
    targets = [Target("po", "product-owner", standins["po"].url, None, 32768)]
    config = RouterConfig(api_key_env="TEAM_KEY")
    app = build_app(config, Catalog(lambda: targets), FakeSwitcher(seconds=0.0))
    with serving(app) as router:
        client = anthropic.Anthropic(base_url=router.url, api_key="team-secret", max_retries=0)
        message = client.messages.create(model="po", max_tokens=3, messages=MESSAGES)  # type: ignore[arg-type]
        assert message.model == "product-owner" and message.content[0].type == "text"
        counted = client.messages.count_tokens(model="po", messages=MESSAGES)  # type: ignore[arg-type]
        assert counted.input_tokens > 0
        with pytest.raises(anthropic.NotFoundError) as missing:
            client.messages.create(model="nobody", max_tokens=3, messages=MESSAGES)  # type: ignore[arg-type]
        assert "The model 'nobody' does not exist" in str(missing.value)
        wrong = anthropic.Anthropic(base_url=router.url, api_key="wrong", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError):
            wrong.messages.create(model="po", max_tokens=3, messages=MESSAGES)  # type: ignore[arg-type]


def test_a_body_without_model_is_refused_in_the_routes_own_words(team: Team):
    files = {"file": ("a.wav", b"RIFF....WAVE", "audio/wav")}
    form = httpx.post(team.router.url + TRANSCRIPTION[0], files=files)
    assert form.status_code == 400
    assert form.json()["error"]["message"] == "The form must have a 'model' field naming an agent."
    plain = team.post("/v1/chat/completions", {"messages": MESSAGES})
    assert plain.json()["error"]["param"] == "model" and team.switcher.switches == []
