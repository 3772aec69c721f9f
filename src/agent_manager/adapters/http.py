"""OpenAI-compatible HTTP calls to a served agent: /health, /v1/models, /metrics, chat.

`requests` is imported inside the functions: it is slow to import and most commands never
talk HTTP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from agent_manager.errors import AgentApiError

# vLLM binds its socket before the engine loads but only listens once ready; through Docker's
# port publishing the host may instead see a reset or an empty reply. All mean "not yet".
NOT_READY = "not-ready"


@dataclass(frozen=True)
class Probe:
    """One look at a server: did /health answer 200, and what /v1/models lists."""

    healthy: bool
    status: int | None  # HTTP status of /health, None when nothing answered
    error: str | None = None


def base_url(host: str, port: int) -> str:
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{host}:{port}"


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def probe_health(url: str, timeout: float = 1.0) -> Probe:
    import requests

    try:
        response = requests.get(f"{url}/health", timeout=timeout)
    except requests.RequestException as error:
        return Probe(False, None, type(error).__name__)
    return Probe(response.status_code == 200, response.status_code)


def served_models(url: str, api_key: str | None = None, timeout: float = 2.0) -> list[str] | None:
    """The ids /v1/models lists, or None when it did not answer with a model list."""
    import requests

    try:
        response = requests.get(f"{url}/v1/models", headers=auth_headers(api_key), timeout=timeout)
        if response.status_code != 200:
            return None
        data: dict[str, Any] = response.json()
    except (requests.RequestException, ValueError):
        return None
    return [str(card.get("id")) for card in data.get("data", []) if isinstance(card, dict)]


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → {name: value}, summing samples of the same name across labels.

    Enough for vLLM's gauges and counters (`vllm:num_requests_running`, `..._total`); histogram
    buckets are summed too and are not meant to be read from here.
    """
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        try:
            number = float(match.group(3))
        except ValueError:
            continue
        values[match.group(1)] = values.get(match.group(1), 0.0) + number
    return values


def fetch_metrics(url: str, timeout: float = 2.0) -> dict[str, float] | None:
    import requests

    try:
        response = requests.get(f"{url}/metrics", timeout=timeout)
    except requests.RequestException:
        return None
    if response.status_code != 200:
        return None
    return parse_metrics(response.text)


# --- chat completions -------------------------------------------------------------------------

# Seconds to wait for the TCP connection, then between two bytes of an answer: a busy server
# may queue a request for a while before its first token.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 300.0


@dataclass(frozen=True)
class Usage:
    """Token counts the server reports for one request."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class ChatDelta:
    """One streamed event of an answer: new text, the finish reason, or the usage totals."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class ChatAnswer:
    """A whole (non-streamed) answer."""

    text: str
    finish_reason: str | None
    usage: Usage | None


def iter_sse_data(chunks: Iterable[bytes]) -> Iterator[str]:
    """Server-sent events → the `data` of each event, in order, until `[DONE]`.

    Chunks may split lines anywhere (even inside a UTF-8 character); several `data:` lines of
    one event are joined with newlines; comments (`:`) and other fields are ignored.
    """
    buffer = b""
    data: list[str] = []
    for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if line == "":
                if data:
                    payload = "\n".join(data)
                    data = []
                    if payload == "[DONE]":
                        return
                    yield payload
                continue
            if line.startswith("data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(" ") else value)
    tail = buffer.rstrip(b"\r").decode("utf-8", errors="replace")
    if tail.startswith("data:"):
        data.append(tail[5:].lstrip(" "))
    if data and "\n".join(data) != "[DONE]":
        yield "\n".join(data)


def chat_delta(event: dict[str, Any]) -> ChatDelta:
    """One `chat.completion.chunk` → ChatDelta. Raises AgentApiError for an in-stream error."""
    if "error" in event:
        message = _error_text(event)
        raise AgentApiError(f"The server stopped the answer: {message}", server_message=message)
    text, finish = "", None
    choices = event.get("choices") or []
    if choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta") or {}
        text = str(delta.get("content") or "")
        finish = choices[0].get("finish_reason")
    return ChatDelta(text=text, finish_reason=finish, usage=_usage(event.get("usage")))


def stream_chat(
    url: str, body: dict[str, Any], api_key: str | None = None, read_timeout: float = READ_TIMEOUT
) -> Iterator[ChatDelta]:
    """POST /v1/chat/completions with `stream: true`; yield deltas as the server sends them.

    Asks for the usage chunk (`stream_options.include_usage`) so token counts come from the
    server, not from counting chunks.
    """
    import requests

    payload = {**body, "stream": True, "stream_options": {"include_usage": True}}
    response = _post(url, "/v1/chat/completions", payload, api_key, read_timeout, stream=True)
    try:
        for data in iter_sse_data(_raw_chunks(response)):
            try:
                event = json.loads(data)
            except ValueError:
                continue
            if isinstance(event, dict):
                yield chat_delta(event)
    except requests.RequestException as error:
        raise AgentApiError(
            f"The connection to {url} broke during the answer ({type(error).__name__})."
        ) from None
    finally:
        response.close()


def complete_chat(
    url: str, body: dict[str, Any], api_key: str | None = None, read_timeout: float = READ_TIMEOUT
) -> ChatAnswer:
    """POST /v1/chat/completions without streaming: the whole answer at once."""
    response = _post(url, "/v1/chat/completions", {**body, "stream": False}, api_key, read_timeout)
    try:
        data = response.json()
        choice = data["choices"][0]
        text = str((choice.get("message") or {}).get("content") or "")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise AgentApiError(
            f"{url} answered with something that is not a chat completion."
        ) from None
    return ChatAnswer(text, choice.get("finish_reason"), _usage(data.get("usage")))


def _post(
    url: str,
    path: str,
    payload: dict[str, Any],
    api_key: str | None,
    read_timeout: float,
    stream: bool = False,
) -> Any:
    import requests

    try:
        response = requests.post(
            f"{url}{path}",
            json=payload,
            headers=auth_headers(api_key),
            timeout=(CONNECT_TIMEOUT, read_timeout),
            stream=stream,
        )
    except requests.RequestException as error:
        raise AgentApiError(f"Nothing answered at {url} ({type(error).__name__}).") from None
    if response.status_code != 200:
        try:
            message = _error_text(response.json())
        except ValueError:
            message = response.text.strip()[:300] or response.reason
        response.close()
        raise AgentApiError(
            f"{url}{path} answered HTTP {response.status_code}: {message}",
            status=response.status_code,
            server_message=message,
        )
    return response


def _raw_chunks(response: Any) -> Iterator[bytes]:
    # `iter_content`/`iter_lines` wait for a full chunk_size of bytes before yielding; read1
    # returns whatever arrived, so every token is seen the moment it is sent.
    raw = response.raw
    while True:
        chunk = raw.read1(65536)
        if not chunk:
            return
        yield chunk


def _error_text(data: Any) -> str:
    """vLLM's error bodies: {"error": {"message": ...}}, {"error": "Unauthorized"}, {"message"}."""
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or error)
        return str(error if "error" in data else data.get("detail") or data)
    return str(data)


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    try:
        return Usage(int(data.get("prompt_tokens") or 0), int(data["completion_tokens"]))
    except (KeyError, TypeError, ValueError):
        return None
