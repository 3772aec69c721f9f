"""`bench`: what users compare servers by, measured from the client side.

The statistics (top half) are pure functions of the samples; the load loop (bottom half) sends
streamed requests from a thread pool, so time to first token is the moment the first text
arrives, not the end of the answer.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from agent_manager.adapters import http
from agent_manager.errors import AgentApiError
from agent_manager.spec.endpoint import Endpoint, explain_api_error


@dataclass(frozen=True)
class BenchSettings:
    requests: int = 20
    concurrency: int = 4
    max_tokens: int = 128
    prompt_len: int = 256


@dataclass(frozen=True)
class Sample:
    """One request as the client saw it. Times in seconds from the request being sent."""

    ok: bool
    latency: float  # until the last byte of the answer
    ttft: float | None = None  # until the first text
    output_tokens: int = 0
    prompt_tokens: int | None = None
    error: str | None = None

    @property
    def decode_rate(self) -> float | None:
        """Output tokens per second after the first one: the speed a reader sees text appear."""
        if self.ttft is None or self.output_tokens < 2 or self.latency <= self.ttft:
            return None
        return (self.output_tokens - 1) / (self.latency - self.ttft)


class Distribution(BaseModel):
    mean: float
    p50: float
    p95: float
    min: float
    max: float


class ServerCounts(BaseModel):
    """Deltas of vLLM's /metrics counters over the run (None: the server does not expose it)."""

    prompt_tokens: int | None
    generation_tokens: int | None
    requests: int | None
    ttft_mean_s: float | None


class BenchReport(BaseModel):
    agent: str
    url: str
    model: str
    requests: int
    concurrency: int
    max_tokens: int
    prompt_len: int
    completed: int
    failed: int
    duration_s: float
    requests_per_min: float
    output_tokens: int
    output_tokens_per_s: float  # all requests together
    prompt_tokens_mean: float | None  # as the server counted them (usage)
    ttft_s: Distribution | None
    latency_s: Distribution | None
    request_output_tokens_per_s: Distribution | None  # per request, after the first token
    server: ServerCounts | None
    errors: list[str]


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (0-100), interpolating between ranks like numpy's default
    (`statistics.quantiles`, inclusive method)."""
    if not values:
        raise ValueError("no values")
    if len(values) == 1 or q <= 0:
        return min(values)
    if q >= 100:
        return max(values)
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def distribution(values: Sequence[float]) -> Distribution | None:
    if not values:
        return None
    return Distribution(
        mean=sum(values) / len(values),
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        min=min(values),
        max=max(values),
    )


def server_counts(
    before: dict[str, float] | None, after: dict[str, float] | None
) -> ServerCounts | None:
    if before is None or after is None:
        return None

    def delta(name: str) -> float | None:
        if name not in after:
            return None
        return after[name] - before.get(name, 0.0)

    def count(name: str) -> int | None:
        value = delta(name)
        return None if value is None else round(value)

    ttft_sum = delta("vllm:time_to_first_token_seconds_sum")
    ttft_count = delta("vllm:time_to_first_token_seconds_count")
    return ServerCounts(
        prompt_tokens=count("vllm:prompt_tokens_total"),
        generation_tokens=count("vllm:generation_tokens_total"),
        requests=count("vllm:request_success_total"),
        ttft_mean_s=ttft_sum / ttft_count if ttft_sum is not None and ttft_count else None,
    )


def summarize(
    endpoint: Endpoint,
    settings: BenchSettings,
    samples: Sequence[Sample],
    duration: float,
    server: ServerCounts | None = None,
) -> BenchReport:
    done = [s for s in samples if s.ok]
    output_tokens = sum(s.output_tokens for s in done)
    prompt_counts = [s.prompt_tokens for s in done if s.prompt_tokens is not None]
    errors: list[str] = []
    for sample in samples:
        if sample.error and sample.error not in errors:
            errors.append(sample.error)
    return BenchReport(
        agent=endpoint.agent,
        url=endpoint.url,
        model=endpoint.model,
        requests=settings.requests,
        concurrency=settings.concurrency,
        max_tokens=settings.max_tokens,
        prompt_len=settings.prompt_len,
        completed=len(done),
        failed=len(samples) - len(done),
        duration_s=duration,
        requests_per_min=len(done) / duration * 60 if duration > 0 else 0.0,
        output_tokens=output_tokens,
        output_tokens_per_s=output_tokens / duration if duration > 0 else 0.0,
        prompt_tokens_mean=sum(prompt_counts) / len(prompt_counts) if prompt_counts else None,
        ttft_s=distribution([s.ttft for s in done if s.ttft is not None]),
        latency_s=distribution([s.latency for s in done]),
        request_output_tokens_per_s=distribution(
            [rate for s in done if (rate := s.decode_rate) is not None]
        ),
        server=server,
        errors=errors[:5],
    )


_FILLER = (
    "plan the release notes for the storage service and list risks tests owners dates budget "
    "users metrics alerts rollback steps cache layers queues workers logs traces dashboards"
).split()


def make_prompt(index: int, words: int) -> str:
    """About `words` tokens of plain English, different for every request so prefix caching
    cannot answer from an earlier request's work."""
    head = f"Request {index}:"
    body = [_FILLER[(index * 7 + i * 3) % len(_FILLER)] for i in range(max(words - 2, 0))]
    return " ".join([head, *body])


# --- the load loop ------------------------------------------------------------------------------

# vLLM updates its counters just after the last byte is sent: give /metrics a moment to agree.
METRICS_SETTLE_S = 2.0


def run_bench(
    endpoint: Endpoint,
    settings: BenchSettings,
    on_done: Callable[[int], None] = lambda done: None,
    clock: Callable[[], float] = time.perf_counter,
) -> BenchReport:
    """Send `settings.requests` streamed requests, `settings.concurrency` at a time.

    Raises the explained API error when every request failed (wrong key, wrong model, ...).
    """
    before = http.fetch_metrics(endpoint.url)
    first_error: list[AgentApiError] = []
    finished = 0
    lock = threading.Lock()

    def one(index: int) -> Sample:
        nonlocal finished
        sample = _one_request(endpoint, settings, index, clock, first_error)
        with lock:
            finished += 1
            on_done(finished)
        return sample

    started = clock()
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        samples = list(pool.map(one, range(settings.requests)))
    duration = clock() - started
    if first_error and not any(s.ok for s in samples):
        raise explain_api_error(endpoint, first_error[0])
    after = _settled_metrics(endpoint.url, before, sum(s.ok for s in samples))
    return summarize(endpoint, settings, samples, duration, server_counts(before, after))


def _one_request(
    endpoint: Endpoint,
    settings: BenchSettings,
    index: int,
    clock: Callable[[], float],
    first_error: list[AgentApiError],
) -> Sample:
    body: dict[str, Any] = {
        "model": endpoint.model,
        "messages": [{"role": "user", "content": make_prompt(index, settings.prompt_len)}],
        "max_tokens": settings.max_tokens,
        # vLLM extension: answer exactly max_tokens, so every run does the same work.
        "ignore_eos": True,
    }
    sent = clock()
    ttft: float | None = None
    chunks = 0
    usage: http.Usage | None = None
    try:
        for delta in http.stream_chat(endpoint.url, body, endpoint.api_key):
            if delta.text:
                chunks += 1
                if ttft is None:
                    ttft = clock() - sent
            usage = delta.usage or usage
    except AgentApiError as error:
        if not first_error:
            first_error.append(error)
        return Sample(ok=False, latency=clock() - sent, error=error.message)
    latency = clock() - sent
    tokens = usage.completion_tokens if usage else chunks
    prompt_tokens = usage.prompt_tokens if usage else None
    return Sample(True, latency, ttft, tokens, prompt_tokens)


def _settled_metrics(
    url: str, before: dict[str, float] | None, completed: int
) -> dict[str, float] | None:
    if before is None:
        return None
    deadline = time.monotonic() + METRICS_SETTLE_S
    while True:
        after = http.fetch_metrics(url)
        if after is None:
            return None
        counted = after.get("vllm:request_success_total", 0.0) - before.get(
            "vllm:request_success_total", 0.0
        )
        if counted >= completed or time.monotonic() >= deadline:
            return after
        time.sleep(0.1)
