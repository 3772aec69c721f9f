"""The model-addressed routes of vLLM 0.33 the router relays, and what it does to a request
before relaying: find the agent named by `model` (JSON body, or the form field of a multipart
upload), refuse a route the agent's task does not serve (before any switch), and rewrite
`model` to the agent's served name.

    generate (every agent)   /v1/chat/completions, /v1/completions, /v1/responses,
                             /v1/messages, /v1/messages/count_tokens,
                             /v1/chat/completions/batch, /tokenize, /detokenize
    pooling (task: pooling)  /v1/embeddings, /v2/embed, /pooling, /classify, /score,
                             /v1/score, /rerank, /v1/rerank, /v2/rerank
    transcription            /v1/audio/transcriptions, /v1/audio/translations (multipart)

vLLM 0.33 registers each group only for a model of that kind (vllm/entrypoints/*/api_router.py):
without the check an embeddings call to a chat agent would switch the GPU to relay a 404.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from agent_manager.router.catalog import Catalog, Target
from agent_manager.router.dialects import Dialect, dialect_of
from agent_manager.router.limits import parse_json
from agent_manager.router.multipart import boundary, form_field, with_form_field

GENERATE = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/chat/completions/batch",
    "/tokenize",
    "/detokenize",
)
POOLING = (
    "/v1/embeddings",
    "/v2/embed",
    "/pooling",
    "/classify",
    "/score",
    "/v1/score",
    "/rerank",
    "/v1/rerank",
    "/v2/rerank",
)
TRANSCRIPTION = ("/v1/audio/transcriptions", "/v1/audio/translations")
# What a user reads when the agent's task does not serve the route.
_TASK_ROUTES = {
    "pooling": "embeddings, score, rerank, classify and pooling",
    "transcription": "audio",
}


@dataclass(frozen=True)
class Route:
    path: str
    task: str  # the task an agent needs for it ("generate": every agent)
    dialect: Dialect


ROUTES = {
    path: Route(path, task, dialect_of(path))
    for task, paths in (
        ("generate", GENERATE),
        ("pooling", POOLING),
        ("transcription", TRANSCRIPTION),
    )
    for path in paths
}


@dataclass(frozen=True)
class Prepared:
    """A request ready to relay: its agent, the body with `model` rewritten, streamed or not."""

    target: Target
    body: bytes
    stream: bool
    previous_response_id: str | None = None  # /v1/responses: the response it continues


@dataclass(frozen=True)
class Refusal:
    """The router's own answer, sent before anything switches."""

    status: int
    message: str
    kind: str
    param: str | None = None
    agent: str = "-"


def prepare(route: Route, body: bytes, content_type: str, catalog: Catalog) -> Prepared | Refusal:
    mark = boundary(content_type)
    payload = None
    previous = None
    if mark is not None:
        model = form_field(body, mark, "model")
        stream = (form_field(body, mark, "stream") or "").lower() == "true"
    else:
        payload = parse_json(body)  # BodyRefused(400) when it nests too deeply
        model = payload.get("model") if isinstance(payload, dict) else None
        stream = isinstance(payload, dict) and payload.get("stream") is True
        if isinstance(payload, dict) and isinstance(payload.get("previous_response_id"), str):
            previous = payload["previous_response_id"]
    if not isinstance(model, str):
        message = (
            "The form must have a 'model' field naming an agent."
            if mark is not None
            else "The body must be a JSON object with a 'model' naming an agent."
        )
        return Refusal(400, message, "BadRequestError", "model")
    target = catalog.find(model)
    if target is None:
        names = ", ".join(catalog.names()) or "none"
        message = f"The model '{model}' does not exist. Models: {names}."
        return Refusal(404, message, "NotFoundError", "model")
    if route.task != "generate" and target.task != route.task:
        message = (
            f"{target.agent} does not serve {route.path}: its spec says 'task: {target.task}', "
            f"and vLLM serves {_TASK_ROUTES[route.task]} routes only for a {route.task} model. "
            f"Ask an agent whose spec has 'task: {route.task}'."
        )
        return Refusal(400, message, "BadRequestError", "model", target.agent)
    if model != target.served_name:
        if mark is not None:
            body = with_form_field(body, mark, "model", target.served_name)
        else:
            assert isinstance(payload, dict)
            body = json.dumps({**payload, "model": target.served_name}).encode()
    return Prepared(target, body, stream, previous)
