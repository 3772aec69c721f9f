"""`GET /v1/responses/{id}` and `POST /v1/responses/{id}/cancel`: relayed to the agent that
made the response (pins.py), or a 404 that says why when that agent was stopped since. A new
response that continues one (`previous_response_id`) is refused the same way, before any
switch, when the agent it names did not make that response or has lost it since.

vLLM keeps responses only when started with VLLM_ENABLE_RESPONSES_API_STORE=1 (the agent's
`env`); without it vLLM itself answers 404 for any id."""

from __future__ import annotations

from typing import Protocol

from starlette.types import Receive, Scope, Send

from agent_manager.router.catalog import Catalog
from agent_manager.router.dialects import error_response
from agent_manager.router.pins import Pin, ResponsePins
from agent_manager.router.routes import Prepared, Refusal
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
            message = _lost(response_id, pin)
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


def check_previous(core: RouterCore, prepared: Prepared) -> Prepared | Refusal:
    """A request continuing a response made through this router: refused (404) when its agent
    is not the one that made that response, or has been stopped since. An id the router does
    not know (made before it started) is the agent's to judge."""
    response_id = prepared.previous_response_id
    pin = core.pins.get(response_id) if response_id is not None else None
    if pin is None:
        return prepared
    agent = prepared.target.agent
    if pin.agent != agent:
        message = (
            f"previous_response_id '{response_id}' was made by {pin.agent}, not {agent}: each "
            f"agent keeps its own responses. Ask {pin.agent} (model '{pin.agent}') to go on "
            "from it, or send the conversation as input instead of the id."
        )
    elif core.lost_since(pin):
        message = _lost(response_id, pin)
    else:
        return prepared
    return Refusal(404, message, "NotFoundError", "previous_response_id", agent)


def _lost(response_id: str | None, pin: Pin) -> str:
    return (
        f"Response '{response_id}' was made by {pin.agent}, which has been stopped since: "
        "vLLM keeps responses in the agent's memory only. Send the request again (with its "
        "input) instead of referring to this id."
    )
