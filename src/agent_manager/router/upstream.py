"""One request through to the agent and back: admission by the scheduler, the httpx call,
streaming pass-through chunk by chunk, cancellation, and the agent's own key added upstream.

Streams are relayed as the agent sends them (`aiter_raw` into a `StreamingResponse`), never
buffered. A client that disconnects closes the upstream connection, so vLLM aborts the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
import httpx
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from agent_manager.router.catalog import Target
from agent_manager.router.dialects import OPENAI, Dialect, error_response, sse_error
from agent_manager.router.errors import RouterError
from agent_manager.router.metrics import RouterMetrics
from agent_manager.router.network import UpstreamTransport
from agent_manager.router.policy import Scheduler, Ticket

LOG = logging.getLogger("agent_manager.router")
FORWARDED_REQUEST_HEADERS = (b"content-type", b"accept", b"user-agent")
FORWARDED_RESPONSE_HEADERS = ("content-type",)
_RETRY = -1  # the agent refused the connection before anything was sent: ask again
CLIENT_GONE = 499  # nginx's "client closed request", for the log and metrics only


# No read timeout: a long generation is not a failure. Connect fails fast: nothing listens.
TIMEOUTS = httpx.Timeout(None, connect=5.0).as_dict()


def new_client() -> httpx.AsyncBaseTransport:
    """An httpx transport, called directly: a relay needs no cookies, redirects or auth flow,
    and skipping `AsyncClient.send` halves the router's CPU per request."""
    return UpstreamTransport()


@dataclass(frozen=True)
class Forward:
    """One admitted request as the router relays it: to which agent, what, streamed or not."""

    target: Target
    path: str
    body: bytes
    stream: bool
    dialect: Dialect = OPENAI  # of the router's own errors
    method: str = "POST"
    sniff: Callable[[bytes], None] | None = None  # sees the answer's body (response ids)


class _TrackedSend:
    """`send` that remembers whether the response has started (headers are out)."""

    def __init__(self, send: Send):
        self._send = send
        self.status: int | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        await self._send(message)


@dataclass
class Relay:
    """Sends admitted requests to their agent; one per router."""

    scheduler: Scheduler
    metrics: RouterMetrics
    client: httpx.AsyncBaseTransport
    debug: bool = False

    async def handle(self, forward: Forward, scope: Scope, receive: Receive, send: Send) -> int:
        """Admit, forward, answer; returns the HTTP status the client got."""
        target = forward.target
        for attempt in (1, 2):
            try:
                ticket = await self._acquire(target.agent, receive)
            except RouterError as error:
                response = error_response(
                    error.status,
                    error.message,
                    error.kind,
                    error.retry_after,
                    dialect=forward.dialect,
                )
                await response(scope, receive, send)
                return error.status
            if ticket is None:
                return CLIENT_GONE  # left while it waited: dropped from the queue
            try:
                status = await self._exchange(ticket, forward, scope, receive, send)
            finally:
                self.scheduler.release(ticket)
            if status != _RETRY:
                return status
            # Stopped by hand (or crashed) since the last look at Docker: start it again.
            self.scheduler.forget(target.agent)
            if attempt == 2:
                break
        message = f"{target.agent} does not accept connections at {target.url}."
        hint = f" See `agent-manager status` and `agent-manager logs {target.agent}`."
        failed = error_response(
            503, message + hint, "ServiceUnavailableError", dialect=forward.dialect
        )
        await failed(scope, receive, send)
        return 503

    async def _acquire(self, agent: str, receive: Receive) -> Ticket | None:
        """A ticket for `agent`; None if the client disconnected while it waited (its place in
        the queue is given up, so it never drives a switch)."""
        scheduler = self.scheduler
        if scheduler.active == agent and scheduler.busy is None and not scheduler.queue_depths():
            return await scheduler.acquire(agent)  # admitted at once: nothing to watch
        acquiring = asyncio.ensure_future(scheduler.acquire(agent))
        watcher = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({acquiring, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
        if acquiring.done():
            return acquiring.result()
        acquiring.cancel()  # the scheduler forgets the waiter (or releases a late ticket)
        with contextlib.suppress(asyncio.CancelledError, RouterError):
            await acquiring
        return None

    async def _exchange(
        self, ticket: Ticket, forward: Forward, scope: Scope, receive: Receive, send: Send
    ) -> int:
        tracked = _TrackedSend(send)
        status = 0
        gone: list[bool] = []
        with anyio.CancelScope() as cancel_scope:
            ticket.on_cancel(cancel_scope.cancel)
            watcher = None
            if not forward.stream:  # a StreamingResponse watches for the disconnect itself
                watcher = asyncio.ensure_future(
                    _cancel_on_disconnect(receive, tracked, cancel_scope, gone)
                )
            try:
                status = await self._relay(forward, scope, receive, tracked)
            finally:
                if watcher is not None:
                    watcher.cancel()
        if gone:
            return CLIENT_GONE  # the upstream connection is closed: vLLM aborts the request
        if not ticket.cancelled.is_set() or status == _RETRY:
            return status
        if tracked.status is None:  # cancelled before the agent answered
            await error_response(
                503, ticket.reason, "ServiceUnavailableError", dialect=forward.dialect
            )(scope, receive, send)
            return 503
        ended = sse_error(503, ticket.reason, forward.dialect)
        await send({"type": "http.response.body", "body": ended, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return tracked.status

    async def _relay(self, forward: Forward, scope: Scope, receive: Receive, send: Send) -> int:
        target = forward.target
        headers = _upstream_headers(scope, target)
        request = httpx.Request(
            forward.method,
            _url(target.url, forward.path),
            content=forward.body,
            headers=headers,
            extensions={"timeout": TIMEOUTS},
        )
        start = time.monotonic()
        try:
            upstream = await self.client.handle_async_request(request)
        except httpx.ConnectError:
            return _RETRY
        except httpx.HTTPError as error:
            message = f"{target.agent} did not answer: {type(error).__name__}: {error}"
            failed = error_response(502, message, "BadGatewayError", dialect=forward.dialect)
            await failed(scope, receive, send)
            return 502
        self.metrics.upstream_seconds.labels(target.agent).observe(time.monotonic() - start)
        kept = {k: v for k, v in upstream.headers.items() if k in FORWARDED_RESPONSE_HEADERS}
        try:
            # An HTTP/1.0 client cannot read chunks: it gets the whole stream as one body.
            event_stream = upstream.headers.get("content-type", "").startswith("text/event-stream")
            if event_stream and scope.get("http_version") != "1.0":
                chunks = _chunks(upstream, target.agent, forward.dialect, forward.sniff)
                stream = StreamingResponse(chunks, upstream.status_code, headers=kept)
                await stream(scope, receive, send)
            else:
                content = b"".join([chunk async for chunk in upstream.aiter_raw()])
                if forward.sniff is not None:
                    forward.sniff(content)
                if self.debug:
                    LOG.debug(
                        "response from %s: %s", target.agent, content.decode(errors="replace")
                    )
                await Response(content, upstream.status_code, headers=kept)(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await upstream.aclose()  # closing the connection is how vLLM learns to abort
        return upstream.status_code


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _cancel_on_disconnect(
    receive: Receive, tracked: _TrackedSend, scope: anyio.CancelScope, gone: list[bool]
) -> None:
    """A client that leaves before its (non-streamed) answer frees the agent at once, rather
    than holding a switch's drain until vLLM finishes a generation nobody reads."""
    while (await receive())["type"] != "http.disconnect":
        pass
    if tracked.status is None:
        gone.append(True)
        scope.cancel()


async def _chunks(
    upstream: httpx.Response,
    agent: str,
    dialect: Dialect,
    sniff: Callable[[bytes], None] | None,
) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            if sniff is not None:
                sniff(chunk)
            yield chunk
    except httpx.HTTPError as error:
        message = f"{agent} stopped answering mid-stream ({type(error).__name__})."
        yield sse_error(502, message, dialect)


@functools.lru_cache(maxsize=256)
def _url(base: str, path: str) -> httpx.URL:
    return httpx.URL(base + path)


def _upstream_headers(scope: Scope, target: Target) -> list[tuple[bytes, bytes]]:
    """The client's content headers, as the bytes it sent (obs-text such as a non-ASCII
    User-Agent is legal HTTP; as text it made httpx raise); never its Authorization (that is
    the router's key)."""
    headers = [(b"accept-encoding", b"identity")]
    for raw_name, raw_value in scope["headers"]:
        if raw_name.lower() in FORWARDED_REQUEST_HEADERS:
            headers.append((raw_name.lower(), raw_value))
    key = target.api_key
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    return headers
