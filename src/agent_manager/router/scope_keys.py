"""What the router's HTTP protocol (protocol.py) adds to each request's ASGI scope for the
relay. Under another server the keys are absent, and the relay does without them."""

from __future__ import annotations

# True once the request's whole body has arrived (most requests: the body comes with the
# head), so reading it needs no deadline (limits.read_body).
BODY_COMPLETE = "agent_manager.body_complete"
# `join_head()`: the next write to the client (a response head) waits for the one after it
# (the body), so that a relayed answer read whole leaves in one write (joined_writes.py).
JOIN_HEAD = "agent_manager.join_head"
# `on_client_gone(callback)`: `callback()` runs if the client's connection is lost before this
# request's answer is complete, so the relay can stop a generation nobody will read.
ON_CLIENT_GONE = "agent_manager.on_client_gone"
