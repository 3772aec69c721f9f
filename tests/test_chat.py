"""`chat`: streamed and whole answers from a running agent, its API key, and a stopped agent."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from agent_manager.adapters.http import ChatDelta, Usage, chat_delta, iter_sse_data
from agent_manager.cli import use_cmd
from agent_manager.cli.chat_input import ChatInput
from agent_manager.client.chat import ChatOptions, Conversation, Reply
from agent_manager.errors import AgentApiError
from agent_manager.spec.endpoint import Endpoint
from tests.conftest import CliResult
from tests.standin.process import StandinProcess, free_port, run_standin

MODEL = "Qwen/Qwen2.5-7B-Instruct-AWQ"
Cli = Callable[..., CliResult]


def point_agent_at(workspace: Path, agent: str, port: int, api_key_env: str | None = None) -> None:
    """Make the workspace's spec of `agent` use `port` (and an API key variable)."""
    spec = workspace / "agents" / f"{agent}.yaml"
    text = re.sub(r"(?m)^port: \d+$", f"port: {port}", spec.read_text())
    if api_key_env:
        text = re.sub(r"(?m)^# api_key_env: \w+$", f"api_key_env: {api_key_env}", text)
    spec.write_text(text)


@pytest.fixture
def po_server(workspace: Path) -> Iterator[StandinProcess]:
    with run_standin([MODEL, "--served-model-name", "po"]) as server:
        point_agent_at(workspace, "po", server.port)
        yield server


@pytest.fixture
def keyed_server(workspace: Path) -> Iterator[StandinProcess]:
    with run_standin([MODEL, "--served-model-name", "po", "--api-key", "s3cret"]) as server:
        point_agent_at(workspace, "po", server.port, api_key_env="PO_API_KEY")
        yield server


# --- server-sent events, as the stream arrives -----------------------------------------------


def sse_response(chunks: list[bytes]) -> httpx.Response:
    """A streamed answer whose body arrives in these pieces."""
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))


def test_sse_events_are_read_across_chunk_boundaries_until_done() -> None:
    stream = [
        b'data: {"a"',
        b": 1}\r\n\r\n: keep-alive\n\nda",
        b"ta: 2\n\ndata: [DONE]\n\ndata: 3\n\n",
    ]
    assert list(iter_sse_data(sse_response(stream))) == ['{"a": 1}', "2"]


def test_sse_multi_line_data_is_joined_and_other_fields_are_ignored() -> None:
    stream = [b"data: one\ndata: two\n\nevent: x\nid: 3\ndata: three\n\n"]
    assert list(iter_sse_data(sse_response(stream))) == ["one\ntwo", "three"]


def test_sse_utf8_split_inside_a_character_is_decoded_whole() -> None:
    encoded = 'data: {"t": "é"}\n\n'.encode()
    split = encoded.index(b"\xc3") + 1
    assert list(iter_sse_data(sse_response([encoded[:split], encoded[split:]]))) == ['{"t": "é"}']


def test_usage_chunk_and_finish_reason_are_read() -> None:
    usage = {"prompt_tokens": 7, "completion_tokens": 3}
    assert chat_delta({"choices": [], "usage": usage}).usage == Usage(7, 3)
    assert chat_delta(
        {"choices": [{"delta": {"content": "hi"}, "finish_reason": "length"}]}
    ) == ChatDelta("hi", "length", None)


def test_an_error_inside_the_stream_is_raised_with_the_servers_words() -> None:
    with pytest.raises(AgentApiError, match="engine died"):
        chat_delta({"error": {"message": "engine died", "code": 500}})


def test_request_carries_system_prompt_and_only_the_options_given() -> None:
    endpoint = Endpoint("po", "http://127.0.0.1:1", "po", None)
    conversation = Conversation(endpoint, ChatOptions(system="Be brief.", max_tokens=9))
    conversation.messages.append({"role": "user", "content": "hi"})
    assert conversation.request_body() == {
        "model": "po",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "max_tokens": 9,
    }


# --- against the stand-in server ---------------------------------------------------------------


def test_chat_streams_the_answer_token_by_token(po_server: StandinProcess) -> None:
    endpoint = Endpoint("po", po_server.url, "po", None)
    pieces: list[str] = []
    reply = Conversation(endpoint, ChatOptions(max_tokens=6)).ask("hello", pieces.append)
    assert len(pieces) == 6  # one write per token, as they came
    assert "".join(pieces) == reply.text
    assert reply.finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 6


def test_chat_prints_the_answer_and_exits_0(
    cli: Cli, workspace: Path, po_server: StandinProcess
) -> None:
    result = cli("--home", str(workspace), "chat", "po", "hello", "--max-tokens", "8")
    assert result.code == 0, result.stderr
    assert len(result.stdout.split()) == 8
    assert "raise --max-tokens" in result.stderr  # the answer was cut at the limit


def test_chat_without_streaming_prints_the_same_answer(
    cli: Cli, workspace: Path, po_server: StandinProcess
) -> None:
    streamed = cli("--home", str(workspace), "chat", "po", "hello", "--max-tokens", "8")
    whole = cli("--home", str(workspace), "chat", "po", "hello", "--max-tokens", "8", "--no-stream")
    assert streamed.code == 0, streamed.stderr
    assert whole.code == 0, whole.stderr
    assert whole.stdout == streamed.stdout
    assert len(whole.stdout.split()) == 8


def test_chat_sends_the_key_from_the_variable_the_spec_names(
    cli: Cli, workspace: Path, keyed_server: StandinProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PO_API_KEY", "s3cret")
    result = cli("--home", str(workspace), "chat", "po", "hello", "--max-tokens", "3")
    assert result.code == 0, result.stderr
    assert len(result.stdout.split()) == 3


def test_chat_without_the_key_says_which_variable_to_set(
    cli: Cli, workspace: Path, keyed_server: StandinProcess
) -> None:
    result = cli("--home", str(workspace), "chat", "po", "hello")
    assert result.code == 1
    assert "agent po refused the request: wrong or missing API key" in result.stderr
    assert "Set PO_API_KEY" in result.stderr
    assert result.stdout == ""


def test_chat_with_a_wrong_key_says_the_variable_holds_the_wrong_key(
    cli: Cli, workspace: Path, keyed_server: StandinProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PO_API_KEY", "nope")
    result = cli("--home", str(workspace), "chat", "po", "hello", "--no-stream")
    assert result.code == 1
    assert "PO_API_KEY does not hold the key" in result.stderr


def test_chat_to_an_agent_that_is_not_running_says_how_to_launch_it(
    cli: Cli, workspace: Path
) -> None:
    point_agent_at(workspace, "po", free_port())
    result = cli("--home", str(workspace), "chat", "po", "hello", "--no-start")
    assert result.code == 1
    said = " ".join(result.stderr.split())
    # The hint carries the --home in use, so following it acts on the same workspace.
    assert f"start it with `agent-manager --home {workspace} launch po`" in said
    assert "Traceback" not in result.output


def test_chat_names_the_models_a_server_serves_when_the_agents_is_not_among_them(
    cli: Cli, workspace: Path
) -> None:
    with run_standin([MODEL, "--served-model-name", "architect"]) as server:
        point_agent_at(workspace, "po", server.port)
        result = cli("--home", str(workspace), "chat", "po", "hello")
    assert result.code == 1
    assert "does not serve model 'po' (it serves: architect)" in result.stderr


@pytest.fixture
def keyboard(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[PipeInput]:
    """What the user types at the terminal, through prompt_toolkit's own pipe input."""
    with create_pipe_input() as typed:
        monkeypatch.setenv("TERM", "xterm-256color")  # prompt_toolkit edits nothing on "dumb"
        monkeypatch.setattr(use_cmd, "_stdin_is_terminal", lambda: True)
        monkeypatch.setattr(
            use_cmd,
            "_chat_input",
            lambda: ChatInput(tmp_path / "history", input=typed, output=DummyOutput()),
        )
        yield typed


def test_chat_loop_answers_each_line_until_ctrl_d(
    cli: Cli, workspace: Path, po_server: StandinProcess, keyboard: PipeInput
) -> None:
    keyboard.send_text("first question\r\rsecond question\r")
    keyboard.close()  # Ctrl-D
    result = cli("--home", str(workspace), "chat", "po", "--max-tokens", "4")
    assert result.code == 0, result.stderr
    answers = result.stdout.strip().splitlines()
    assert [len(a.split()) for a in answers] == [4, 4]  # the empty line asked nothing
    assert "/bye, Ctrl-D or Ctrl-C to leave" in result.stderr


def test_chat_edits_lines_keeps_history_takes_several_and_knows_clear_and_bye(
    cli: Cli,
    workspace: Path,
    po_server: StandinProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[list[dict[str, str]]] = []
    real_ask = Conversation.ask

    def ask(self: Conversation, prompt: str, write: Callable[[str], None]) -> Reply:
        reply = real_ask(self, prompt, write)
        asked.append(list(self.messages))
        return reply

    left, up = "\x1b[D", "\x1b[A"
    # What the user types at each prompt, once it is shown (as a person does: prompt_toolkit
    # loads the history when the prompt is first drawn).
    typed = [
        "one\r",
        "one" + left * 3 + "zero \r",  # the cursor moved back three characters
        up + up + "\r",  # history: the line typed two messages ago
        '"""two\r',  # a quoted block ...
        'three"""\r',  # ... of two lines
        "/clear\r",
        "/?\r",
        "four\x1b\rfive\r",  # Alt-Enter adds a line
        "/bye\r",
    ]
    with create_pipe_input() as keys:

        def at_prompt() -> None:
            threading.Timer(0.2, keys.send_text, (typed.pop(0),)).start()

        monkeypatch.setenv("TERM", "xterm-256color")
        monkeypatch.setattr(use_cmd, "_stdin_is_terminal", lambda: True)
        monkeypatch.setattr(
            use_cmd,
            "_chat_input",
            lambda: ChatInput(tmp_path / "history", at_prompt, input=keys, output=DummyOutput()),
        )
        monkeypatch.setattr(Conversation, "ask", ask)
        result = cli("--home", str(workspace), "chat", "po", "--max-tokens", "3")
    assert result.code == 0, result.stderr
    users = [[m["content"] for m in turn if m["role"] == "user"] for turn in asked]
    assert users == [
        ["one"],
        ["one", "zero one"],
        ["one", "zero one", "one"],
        ["one", "zero one", "one", "two\nthree"],
        ["four\nfive"],  # after /clear: a new conversation
    ]
    assert "Cleared the conversation" in result.stderr and "/clear forgets" in result.stderr
    history = (tmp_path / "history").read_text()
    assert "+zero one" in history and "+four" in history


def test_chat_starts_an_agent_that_is_down_as_launch_does(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_manager.cli.agent_start import serving_endpoint
    from agent_manager.spec.workspace import resolve_workspace
    from tests.fakes.docker import install

    fake = install(monkeypatch)
    endpoint = serving_endpoint(resolve_workspace(workspace), "po", start=True)
    assert "up -d po" in fake.ops
    assert endpoint.url == "http://127.0.0.1:8002"


def test_chat_asks_through_the_router_when_one_runs(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_manager.cli.agent_start import serving_endpoint
    from agent_manager.router import state_file
    from agent_manager.spec.workspace import resolve_workspace
    from tests.fakes.docker import install

    fake = install(monkeypatch)
    view = state_file.RouterView(url="http://127.0.0.1:8080", pid=1, answering=True)
    monkeypatch.setattr(state_file, "router_view", lambda ws, warn, timeout=2.0: view)
    monkeypatch.setattr(state_file, "find_router", lambda ws, warn: None)
    endpoint = serving_endpoint(resolve_workspace(workspace), "po", start=True)
    assert endpoint.url == "http://127.0.0.1:8080" and endpoint.model == "po"
    assert not any(op.startswith("up") for op in fake.ops)  # the router starts it


def test_a_prompt_piped_on_stdin_is_asked_once(
    cli: Cli, workspace: Path, po_server: StandinProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("first line\nsecond line\n"))
    result = cli("--home", str(workspace), "chat", "po", "--max-tokens", "5")
    assert result.code == 0, result.stderr
    assert len(result.stdout.split()) == 5
    assert "you>" not in result.stderr


def test_an_empty_stdin_is_a_usage_error(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    result = cli("--home", str(workspace), "chat", "po", "-")
    assert result.code == 2
    assert "No prompt: stdin was empty." in result.stderr


def test_ctrl_c_at_the_prompt_leaves_the_conversation_cleanly(
    cli: Cli, workspace: Path, po_server: StandinProcess, keyboard: PipeInput
) -> None:
    keyboard.send_text("\x03")
    result = cli("--home", str(workspace), "chat", "po")
    assert result.code == 0
    assert result.stdout == ""


def test_each_turn_sends_the_whole_conversation(po_server: StandinProcess) -> None:
    endpoint = Endpoint("po", po_server.url, "po", None)
    conversation = Conversation(endpoint, ChatOptions(system="Be brief.", max_tokens=5))
    first = conversation.ask("one two three", lambda text: None)
    second = conversation.ask("four", lambda text: None)
    assert [m["role"] for m in conversation.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    # The server counted the first exchange again in the second prompt.
    assert first.usage is not None and second.usage is not None
    assert second.usage.prompt_tokens >= first.usage.prompt_tokens + 5 + 1


def test_ctrl_c_during_an_answer_keeps_what_arrived(po_server: StandinProcess) -> None:
    conversation = Conversation(
        Endpoint("po", po_server.url, "po", None), ChatOptions(max_tokens=50)
    )
    seen: list[str] = []

    def write(text: str) -> None:
        seen.append(text)
        if len(seen) == 2:
            raise KeyboardInterrupt

    reply = conversation.ask("hello", write)
    assert reply.interrupted and reply.text == "".join(seen)
    assert conversation.messages[-1] == {"role": "assistant", "content": reply.text}


def test_a_refused_turn_leaves_the_conversation_as_it_was(keyed_server: StandinProcess) -> None:
    conversation = Conversation(Endpoint("po", keyed_server.url, "po", "PO_API_KEY"))
    with pytest.raises(AgentApiError, match="API key"):
        conversation.ask("hello", lambda text: None)
    assert conversation.messages == []


def test_temperature_outside_0_to_2_is_a_usage_error(cli: Cli, workspace: Path) -> None:
    result = cli("--home", str(workspace), "chat", "po", "hi", "--temperature", "3")
    assert result.code == 2
