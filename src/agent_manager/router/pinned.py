"""`GET /v1/responses/{id}` and `POST /v1/responses/{id}/cancel`: relayed to the agent that
made the response (pins.py), or a 404 that says why when that agent was stopped since."""

from __future__ import annotations

from typing import Protocol

from starlette.types import Receive, Scope, Send

from agent_manager.router.catalog import Catalog
from agent_manager.router.dialects import error_response
from agent_manager.router.pins import Pin, ResponsePins
from agent_manager.router.upstream import Forward, Relay


class RouterCore(Protocol):
    """What the routes need of the router (real: `app.RouterCore`)."""

    catalog: Catalog
    pins: ResponsePins
    relay: Relay | None

    def lost_since(self, pin: Pin) -> bool: ...


class PinnedResponse:
    """The ASGI endpoint of both routes."""

    def __init__(self, core: RouterCore):
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        core = self.core
        response_id = scope["path_params"]["response_id"]
        pin = core.pins.get(response_id)
        target = core.catalog.get(pin.agent) if pin is not None else None
        if pin is None or target is None:
            message = (
                f"No response '{response_id}' was made through this router (it remembers the "
                "agent of each response made since it started)."
            )
            await error_response(404, message, "NotFoundError", param="response_id")(
                scope, receive, send
            )
            return
        if core.lost_since(pin):
            message = (
                f"Response '{response_id}' was made by {pin.agent}, which has been stopped "
                "since: vLLM keeps responses in the agent's memory only. Send the request again "
                "(with its input) instead of referring to this id."
            )
            await error_response(404, message, "NotFoundError", param="response_id")(
                scope, receive, send
            )
            return
        body = b""
        while True:
            received = await receive()
            if received["type"] != "http.request":
                return  # the client left: nobody to answer
            body += received.get("body", b"")
            if not received.get("more_body", False):
                break
        assert core.relay is not None
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope["path"] + (f"?{query}" if query else "")
        forward = Forward(target, path, body, False, method=scope["method"])
        await core.relay.handle(forward, scope, receive, send)
