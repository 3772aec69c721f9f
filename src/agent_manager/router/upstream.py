"""One request through to the agent and back: admission by the scheduler, the upstream call
(network.py), streaming pass-through chunk by chunk, cancellation, and the agent's own key
added upstream.

Streams are relayed as the agent sends them (`aiter_raw` into a `StreamingResponse`), never
buffered. A client that disconnects closes the upstream connection, so vLLM aborts the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from agent_manager.router.answer import UpstreamResponse
from agent_manager.router.catalog import Target
from agent_manager.router.dialects import OPENAI, Dialect, error_response, sse_error
from agent_manager.router.errors import RouterError
from agent_manager.router.metrics import RouterMetrics
from agent_manager.router.network import UpstreamClient
from agent_manager.router.policy import Scheduler, Ticket
from agent_manager.router.scope_keys import ON_CLIENT_GONE, RESPOND

LOG = logging.getLogger("agent_manager.router")
FORWARDED_REQUEST_HEADERS = (b"content-type", b"accept", b"user-agent")
_RETRY = -1  # the agent refused the connection before anything was sent: ask again
CLIENT_GONE = 499  # nginx's "client closed request", for the log and metrics only


def new_client() -> UpstreamClient:
    return UpstreamClient()


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


class TrackedSend:
    """`send` that remembers whether the response has started (headers are out), and sends a
    whole answer in one write where the server offers it (scope_keys.RESPOND). The front
    door makes one per request; the relay reuses it."""

    def __init__(self, send: Send, scope: Scope):
        self._send = send
        self._respond = scope.get(RESPOND)
        self.status: int | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        await self._send(message)

    async def whole(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Head and body at once (`headers` without content-length: it is added)."""
        self.status = status
        if self._respond is not None:
            self._respond(status, headers, body)
            return
        head = [*headers, (b"content-length", b"%d" % len(body))]
        await self._send({"type": "http.response.start", "status": status, "headers": head})
        await self._send({"type": "http.response.body", "body": body})


@dataclass
class Relay:
    """Sends admitted requests to their agent; one per router."""

    scheduler: Scheduler
    metrics: RouterMetrics
    client: UpstreamClient
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
        tracked = send if isinstance(send, TrackedSend) else TrackedSend(send, scope)
        status = 0
        gone: list[bool] = []
        canceller = _Canceller(asyncio.current_task())
        ticket.on_cancel(canceller.cancel)

        def client_gone() -> None:
            # Before the answer started, a client that left frees the agent at once rather
            # than holding a switch's drain until vLLM finishes what nobody reads. (Once a
            # stream has started, Starlette's StreamingResponse sees the disconnect.)
            if tracked.status is None and canceller.armed:
                gone.append(True)
                canceller.cancel()

        on_client_gone = scope.get(ON_CLIENT_GONE)
        if on_client_gone is not None:
            on_client_gone(client_gone)
        try:
            status = await self._relay(forward, scope, receive, tracked)
        except asyncio.CancelledError:
            if not canceller.absorbs():
                raise  # not (only) ours: the router is going away
        finally:
            canceller.armed = False
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

    async def _relay(
        self, forward: Forward, scope: Scope, receive: Receive, send: TrackedSend
    ) -> int:
        target = forward.target
        headers = _upstream_headers(scope, target)
        start = time.monotonic()
        try:
            upstream = await self.client.request(
                forward.method, target.url, forward.path, headers, forward.body
            )
        except httpx.ConnectError:
            return _RETRY
        except httpx.HTTPError as error:
            message = f"{target.agent} did not answer: {type(error).__name__}: {error}"
            failed = error_response(502, message, "BadGatewayError", dialect=forward.dialect)
            await failed(scope, receive, send)
            return 502
        waited = time.monotonic() - start  # observed once the client has its answer
        content_type = upstream.header(b"content-type")
        try:
            # An HTTP/1.0 client cannot read chunks: it gets the whole stream as one body.
            event_stream = content_type is not None and content_type.startswith(
                b"text/event-stream"
            )
            if event_stream and scope.get("http_version") != "1.0":
                assert content_type is not None
                chunks = _chunks(upstream, target.agent, forward.dialect, forward.sniff)
                kept = {"content-type": content_type.decode("latin-1")}
                stream = StreamingResponse(chunks, upstream.status_code, headers=kept)
                await stream(scope, receive, send)
            else:
                content = await upstream.aread()
                if forward.sniff is not None:
                    forward.sniff(content)
                if self.debug:
                    LOG.debug(
                        "response from %s: %s", target.agent, content.decode(errors="replace")
                    )
                head = [] if content_type is None else [(b"content-type", content_type)]
                await send.whole(upstream.status_code, head, content)
        finally:
            upstream.close()  # before its end, closing the connection is how vLLM aborts
        self.metrics.upstream(target.agent, waited)
        return upstream.status_code


class _Canceller:
    """Cancels the task that relays one request, from outside (a switch's drain limit, the
    client leaving), at most once and only while armed. `Task.uncancel` tells this
    cancellation from anyone else's, as `asyncio.timeout` does (an anyio cancel scope did the
    same at a few times the cost per request)."""

    __slots__ = ("_task", "requested", "armed")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self._task = task
        self.requested = False
        self.armed = True

    def cancel(self) -> None:
        if self.armed and not self.requested and self._task is not None:
            self.requested = True
            self._task.cancel()

    def absorbs(self) -> bool:
        """After a CancelledError: was it this one's alone (then the relay answers)?"""
        if not self.requested or self._task is None:
            return False
        if sys.version_info < (3, 11):  # no cancellation counts: one cancel is all it knows
            return True
        return self._task.uncancel() == 0


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _chunks(
    upstream: UpstreamResponse,
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


def _upstream_headers(scope: Scope, target: Target) -> list[tuple[bytes, bytes]]:
    """The client's content headers, as the bytes it sent (obs-text such as a non-ASCII
    User-Agent is legal HTTP); never its Authorization (that is the router's key)."""
    headers = [(b"accept-encoding", b"identity")]
    for raw_name, raw_value in scope["headers"]:
        if raw_name.lower() in FORWARDED_REQUEST_HEADERS:
            headers.append((raw_name.lower(), raw_value))
    key = target.api_key
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    return headers
