"""What the router's HTTP protocol (protocol.py) adds to each request's ASGI scope for the
relay. Under another server the keys are absent, and the relay does without them."""

from __future__ import annotations

# True once the request's whole body has arrived, so reading it needs no deadline
# (limits.read_body). The protocol starts the app for a small body only once it is whole.
BODY_COMPLETE = "agent_manager.body_complete"
# True when the protocol gave up waiting for the body (--body-timeout): the app answers 408.
BODY_LATE = "agent_manager.body_late"
# `respond(status, headers, body)`: a whole answer, head and body in one write to the client
# (uvicorn's `send` writes a head and its body apart: two segments for the client to wake up
# for), with the server's default headers and content-length added.
RESPOND = "agent_manager.respond"
# `on_client_gone(callback)`: `callback()` runs if the client's connection is lost before this
# request's answer is complete, so the relay can stop a generation nobody will read.
ON_CLIENT_GONE = "agent_manager.on_client_gone"
