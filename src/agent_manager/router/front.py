"""The router's front door: proxied POSTs go straight to their route's handler (after the
router's key, if it has one), before Starlette's middleware, exception handling and route
table, which cost a relay about a tenth of its CPU per request; everything else goes through
Starlette (app.py's routes)."""

from __future__ import annotations

import logging
import secrets

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from agent_manager.router.dialects import dialect_of, error_response
from agent_manager.router.upstream import TrackedSend

LOG = logging.getLogger("agent_manager.router")
OPEN_PATHS = ("/health",)


class RouterApp(Starlette):
    """Starlette, with the proxied POSTs taken first (`front`)."""

    front: Front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            proxy = self.front.proxies.get(scope["path"])
            if proxy is not None:
                await self.front(proxy, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


class Front:
    """Proxied POSTs, straight to their `_Proxy` (after the router's key, if it has one). A
    failure in the proxy path is logged and answered with 500 in OpenAI's shape (if nothing
    was sent yet), where Starlette's error middleware would answer in plain text."""

    def __init__(self, proxies: dict[str, ASGIApp], key: bytes | None):
        self.proxies = proxies
        self.key = key

    async def __call__(self, proxy: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        if self.key is not None and not _authorized(scope, self.key):
            await _refuse_key(scope, receive, send)
            return
        tracked = TrackedSend(send, scope)
        try:
            await proxy(scope, receive, tracked)
        except Exception:
            LOG.exception("the router failed on POST %s", scope["path"])
            if tracked.status is None:
                message = "The router failed on this request; see its log."
                failed = error_response(
                    500, message, "InternalServerError", dialect=dialect_of(scope["path"])
                )
                await failed(scope, receive, send)


class RequireKey:
    """Every route but /health needs `Authorization: Bearer <the router's key>` (or, as
    Anthropic's clients send it, `x-api-key: <key>`)."""

    def __init__(self, app: ASGIApp, key: str):
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if _authorized(scope, self.key):
            await self.app(scope, receive, send)
            return
        await _refuse_key(scope, receive, send)


def _authorized(scope: Scope, key: bytes) -> bool:
    headers = dict(scope["headers"])
    given = headers.get(b"authorization", b"")
    # The `anthropic` SDK sends its key as x-api-key.
    return secrets.compare_digest(given, b"Bearer " + key) or secrets.compare_digest(
        headers.get(b"x-api-key", b""), key
    )


async def _refuse_key(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(
        401,
        "Missing or wrong API key for this router.",
        "AuthenticationError",
        dialect=dialect_of(scope["path"]),
    )
    await response(scope, receive, send)
