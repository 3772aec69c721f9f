"""OpenAI-compatible HTTP calls to a served agent: /health, /v1/models, /metrics, chat.

Everything goes through httpx (the one HTTP client of agent-manager's own calls), imported
inside the functions: most commands never talk HTTP. The quick looks (/health, /v1/models,
/metrics, and vLLM's dev endpoints in vllm_dev.py) share one client that keeps no connection
alive between calls, so a look at a restarted server never meets a stale socket; chat uses a
pooled client, and `httpx-sse` reads streamed answers token by token.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_manager.errors import AgentApiError

if TYPE_CHECKING:
    import httpx

# `import httpx` also imports httpx's own command-line client (`httpx._main`: click, pygments,
# rich.progress, rich.syntax) whenever those are installed, as typer and rich make them here:
# ~40 ms of every command that talks HTTP, a sixth of a hot switch's own time. httpx imports it
# under `except ImportError`, so a module marked absent is skipped; agent-manager never runs
# that client. Once httpx is imported this changes nothing (tests/test_http_import.py).
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


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
    """One GET /health. vLLM binds its socket before the engine loads but only answers once
    ready; through Docker's port publishing the host may see a reset or an empty reply
    instead: all are "nothing answered" (status None, the error's name)."""
    import httpx

    try:
        response = quick_client().get(f"{url}/health", timeout=timeout)
    except httpx.HTTPError as error:
        return Probe(False, None, type(error).__name__)
    return Probe(response.status_code == 200, response.status_code)


def served_models(url: str, api_key: str | None = None, timeout: float = 2.0) -> list[str] | None:
    """The ids /v1/models lists, or None when it did not answer with a model list."""
    import httpx

    try:
        response = quick_client().get(
            f"{url}/v1/models", headers=auth_headers(api_key), timeout=timeout
        )
        if response.status_code != 200:
            return None
        data: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return [str(card.get("id")) for card in data.get("data", []) if isinstance(card, dict)]


def greedy_completion(
    url: str, served_name: str, prompt: str, api_key: str | None, timeout: float = 10.0
) -> str | None:
    """One greedy token of `prompt` (/v1/completions, temperature 0); None when the server
    did not answer with a completion."""
    import httpx

    body = {"model": served_name, "prompt": prompt, "max_tokens": 1, "temperature": 0}
    try:
        response = quick_client().post(
            f"{url}/v1/completions", json=body, headers=auth_headers(api_key), timeout=timeout
        )
        if response.status_code != 200:
            return None
        text = response.json()["choices"][0]["text"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        return None
    return str(text)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → {sample name: value}, summing samples of one name across labels.

    Enough for vLLM's gauges and counters (`vllm:num_requests_running`, `..._total`); histogram
    buckets are summed too and are not meant to be read from here. A malformed exposition
    yields what was read before it.
    """
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[sample.name] = values.get(sample.name, 0.0) + float(sample.value)
    except ValueError:
        pass
    return values


def fetch_metrics(url: str, timeout: float = 2.0) -> dict[str, float] | None:
    import httpx

    try:
        response = quick_client().get(f"{url}/metrics", timeout=timeout)
    except httpx.HTTPError:
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


def iter_sse_data(response: httpx.Response) -> Iterator[str]:
    """The `data` of each server-sent event of a streamed answer, as it arrives, until
    `[DONE]` (httpx yields bytes as they come off the socket; httpx-sse parses the events)."""
    from httpx_sse import EventSource

    for event in EventSource(response).iter_sse():
        if event.data == "[DONE]":
            return
        if event.data:
            yield event.data


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
    import httpx
    from httpx_sse import SSEError

    payload = {**body, "stream": True, "stream_options": {"include_usage": True}}
    with _chat_request(url, payload, api_key, read_timeout) as response:
        try:
            for data in iter_sse_data(response):
                try:
                    event = json.loads(data)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    yield chat_delta(event)
        except SSEError:
            raise AgentApiError(f"{url} answered with something that is not a stream.") from None
        except httpx.HTTPError as error:
            raise AgentApiError(
                f"The connection to {url} broke during the answer ({type(error).__name__})."
            ) from None


def complete_chat(
    url: str, body: dict[str, Any], api_key: str | None = None, read_timeout: float = READ_TIMEOUT
) -> ChatAnswer:
    """POST /v1/chat/completions without streaming: the whole answer at once."""
    import httpx

    with _chat_request(url, {**body, "stream": False}, api_key, read_timeout) as response:
        try:
            data = json.loads(response.read())
            choice = data["choices"][0]
            text = str((choice.get("message") or {}).get("content") or "")
        except httpx.HTTPError as error:
            raise AgentApiError(
                f"The connection to {url} broke during the answer ({type(error).__name__})."
            ) from None
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise AgentApiError(
                f"{url} answered with something that is not a chat completion."
            ) from None
    return ChatAnswer(text, choice.get("finish_reason"), _usage(data.get("usage")))


@contextmanager
def _chat_request(
    url: str, payload: dict[str, Any], api_key: str | None, read_timeout: float
) -> Iterator[httpx.Response]:
    """POST /v1/chat/completions; the open response when it is 200, else AgentApiError."""
    import httpx

    path = "/v1/chat/completions"
    timeout = httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT)
    try:
        with _client().stream(
            "POST", f"{url}{path}", json=payload, headers=auth_headers(api_key), timeout=timeout
        ) as response:
            if response.status_code != 200:
                body = response.read()
                try:
                    message = _error_text(json.loads(body))
                except ValueError:
                    message = body.decode(errors="replace").strip()[:300] or response.reason_phrase
                raise AgentApiError(
                    f"{url}{path} answered HTTP {response.status_code}: {message}",
                    status=response.status_code,
                    server_message=message,
                )
            yield response
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:
        raise AgentApiError(f"Nothing answered at {url} ({type(error).__name__}).") from None


_QUICK_CLIENT_LOCK = threading.Lock()


def quick_client() -> httpx.Client:
    """`_quick_client()`, built once even when the first looks run at once (a switch asks
    every agent's state in parallel)."""
    with _QUICK_CLIENT_LOCK:
        return _quick_client()


@functools.cache
def _quick_client() -> httpx.Client:
    """The client of the quick looks: built once, no keep-alive (each look opens its own
    connection, as a server may have restarted since).

    Every URL it is given is an agent's plain `http://` one (`base_url`), so it loads no CA
    bundle: httpx's default SSL context reads certifi's, ~60 ms of a hot switch's own time.
    The context it gets still verifies; with nothing to trust, an https URL fails closed."""
    import ssl

    import httpx

    no_ca = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return httpx.Client(verify=no_ca, limits=httpx.Limits(max_keepalive_connections=0))


@functools.cache
def _client() -> httpx.Client:
    """One pooled client for the process (thread-safe; building one costs an SSL context)."""
    import httpx

    return httpx.Client()


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
