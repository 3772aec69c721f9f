"""A conversation with one agent: the messages so far, and one request per turn.

Text goes to a `write` callable as it arrives, so the CLI streams it and tests collect it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent_manager.adapters import http
from agent_manager.errors import AgentApiError
from agent_manager.spec.endpoint import Endpoint, explain_api_error


@dataclass(frozen=True)
class ChatOptions:
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = True


@dataclass(frozen=True)
class Reply:
    text: str
    finish_reason: str | None
    usage: http.Usage | None
    interrupted: bool = False


@dataclass
class Conversation:
    endpoint: Endpoint
    options: ChatOptions = field(default_factory=ChatOptions)
    messages: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.options.system and not self.messages:
            self.messages.append({"role": "system", "content": self.options.system})

    def clear(self) -> None:
        """Forget the turns so far (`/clear`); the system prompt stays."""
        self.messages[:] = [m for m in self.messages if m["role"] == "system"]

    def request_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.endpoint.model, "messages": list(self.messages)}
        # Unset options are left out so the server's defaults (the spec's temperature) apply.
        if self.options.max_tokens is not None:
            body["max_tokens"] = self.options.max_tokens
        if self.options.temperature is not None:
            body["temperature"] = self.options.temperature
        return body

    def ask(self, prompt: str, write: Callable[[str], None]) -> Reply:
        """Send one user turn; write the answer as it comes; remember both on success.

        A failed request leaves the conversation as it was. Ctrl-C during a streamed answer
        keeps what arrived (the user saw it) and returns it marked as interrupted.
        """
        self.messages.append({"role": "user", "content": prompt})
        try:
            reply = self._send(write)
        except AgentApiError as error:
            self.messages.pop()
            raise explain_api_error(self.endpoint, error) from None
        if reply.text or not reply.interrupted:
            self.messages.append({"role": "assistant", "content": reply.text})
        else:
            self.messages.pop()
        return reply

    def _send(self, write: Callable[[str], None]) -> Reply:
        url, key = self.endpoint.url, self.endpoint.api_key
        if not self.options.stream:
            answer = http.complete_chat(url, self.request_body(), key)
            write(answer.text)
            return Reply(answer.text, answer.finish_reason, answer.usage)
        parts: list[str] = []
        finish: str | None = None
        usage: http.Usage | None = None
        try:
            for delta in http.stream_chat(url, self.request_body(), key):
                if delta.text:
                    parts.append(delta.text)
                    write(delta.text)
                finish = delta.finish_reason or finish
                usage = delta.usage or usage
        except KeyboardInterrupt:
            return Reply("".join(parts), "interrupted", usage, interrupted=True)
        return Reply("".join(parts), finish, usage)


def chat_loop(
    conversation: Conversation,
    read_prompt: Callable[[], str | None],
    write: Callable[[str], None],
    on_reply: Callable[[Reply], None] = lambda reply: None,
) -> int:
    """Ask, answer, repeat until `read_prompt` returns None (Ctrl-D / Ctrl-C). Turns taken."""
    turns = 0
    while True:
        prompt = read_prompt()
        if prompt is None:
            return turns
        if not prompt.strip():
            continue
        reply = conversation.ask(prompt, write)
        turns += 1
        on_reply(reply)
