"""The stand-in's routes beyond chat and completions, as vLLM 0.33 registers them: for a
generate model `/v1/responses` (with GET and cancel by id), Anthropic's `/v1/messages` and
`count_tokens`, `/v1/chat/completions/batch`, `/tokenize`, `/detokenize`; for a pooling model
(`--runner pooling`) only the pooling routes (and no chat); for a transcription model (a
"whisper" model name) the audio routes, whose `model` is a multipart form field.

Every answer names the served model it was asked for, so tests see what reached which agent.
Standard library only (runs on the host's Python in the stand-in image).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

POOLING = ("/v1/embeddings", "/v2/embed", "/pooling", "/classify", "/score", "/v1/score",
           "/rerank", "/v1/rerank", "/v2/rerank")  # fmt: skip
AUDIO = ("/v1/audio/transcriptions", "/v1/audio/translations")
_RESPONSE_PATH = re.compile(r"^/v1/responses/([^/]+)(/cancel)?$")


class ApiRoutes:
    def __init__(self, model: str, served: list[str], runner: str | None) -> None:
        self.served = served
        self.pooling = runner == "pooling"
        self.transcription = "whisper" in model.lower()
        self.responses: dict[str, dict[str, Any]] = {}  # vLLM keeps them in memory too
        # ...but only when started with VLLM_ENABLE_RESPONSES_API_STORE=1 (vllm/envs.py,
        # off by default; entrypoints/openai/responses/serving.py then drops `store`).
        self.store = os.environ.get("VLLM_ENABLE_RESPONSES_API_STORE", "0") not in ("", "0")

    def generates(self) -> bool:
        return not self.pooling

    def routes(self, h: Any) -> dict[tuple[str, str], Callable[[], None]]:
        table: dict[tuple[str, str], Callable[[], None]] = {}
        if self.pooling:
            table.update({("POST", p): (lambda p=p: self._pool(h, p)) for p in POOLING})
            return table
        table.update(
            {
                ("POST", "/v1/responses"): lambda: self._respond(h),
                ("POST", "/v1/messages"): lambda: self._messages(h),
                ("POST", "/v1/messages/count_tokens"): lambda: self._count_tokens(h),
                ("POST", "/v1/chat/completions/batch"): lambda: self._batch(h),
                ("POST", "/tokenize"): lambda: self._tokenize(h),
                ("POST", "/detokenize"): lambda: self._detokenize(h),
            }
        )
        if self.transcription:
            table.update({("POST", p): (lambda: self._audio(h)) for p in AUDIO})
        return table

    def dynamic(self, h: Any, method: str, path: str) -> Callable[[], None] | None:
        found = _RESPONSE_PATH.match(path)
        if found is None or self.pooling:
            return None
        wanted = "POST" if found.group(2) else "GET"
        if method != wanted:
            return None
        return lambda: self._stored(h, found.group(1), bool(found.group(2)))

    def route_lines(self) -> list[tuple[str, str]]:
        if self.pooling:
            return [(p, "POST") for p in POOLING]
        lines = [("/v1/responses", "POST"), ("/v1/responses/{response_id}", "GET"),
                 ("/v1/messages", "POST"), ("/tokenize", "POST")]  # fmt: skip
        return lines + ([(p, "POST") for p in AUDIO] if self.transcription else [])

    # -- helpers

    def _model(self, h: Any, body: dict[str, Any], anthropic: bool = False) -> str | None:
        model = body.get("model")
        if model in self.served:
            return str(model)
        message = f"The model `{model}` does not exist."
        if anthropic:
            h._json(
                404, {"type": "error", "error": {"type": "not_found_error", "message": message}}
            )
        else:
            h._error(404, message, "NotFoundError", "model")
        return None

    def _words(self, body: dict[str, Any], key: str = "max_output_tokens") -> list[str]:
        count = body.get(key) or body.get("max_tokens") or 8
        return ["word"] * int(count)

    # -- generate

    def _respond(self, h: Any) -> None:
        body = h._body()
        if body is None or (model := self._model(h, body)) is None:
            return
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self.responses:
            message = f"Response with id '{previous}' not found."
            h._error(404, message, "NotFoundError", "previous_response_id")
            return
        response_id = f"resp_{os.urandom(12).hex()}"
        text = " ".join(self._words(body))
        content = [{"type": "output_text", "text": text, "annotations": []}]
        message = {"type": "message", "id": f"msg_{os.urandom(8).hex()}", "role": "assistant",
                   "status": "completed", "content": content}  # fmt: skip
        response = {"id": response_id, "object": "response", "created_at": int(time.time()),
                    "model": model, "status": "completed", "output": [message],
                    "usage": {"input_tokens": 3, "output_tokens": len(text.split()),
                              "total_tokens": 3 + len(text.split())}}  # fmt: skip
        if self.store and body.get("store", True):
            self.responses[response_id] = response
        if not body.get("stream"):
            h._json(200, response)
            return
        h._start_stream()
        created = {**response, "status": "in_progress", "output": []}
        for number, (kind, payload) in enumerate(
            [
                ("response.created", {"response": created}),
                (
                    "response.output_text.delta",
                    {
                        "delta": text,
                        "item_id": message["id"],
                        "output_index": 0,
                        "content_index": 0,
                    },
                ),
                ("response.completed", {"response": response}),
            ]  # fmt: skip
        ):
            event = {"type": kind, "sequence_number": number, **payload}
            h._raw_chunk(f"event: {kind}\ndata: {json.dumps(event)}\n\n")
        h._end_stream()

    def _stored(self, h: Any, response_id: str, cancel: bool) -> None:
        response = self.responses.get(response_id)
        if response is None:
            h._error(404, f"Response with id '{response_id}' not found.", "NotFoundError")
            return
        if cancel:  # vLLM cancels only a background response still queued or in progress
            message = "Cannot cancel a synchronous response."
            h._error(400, message, "BadRequestError", "response_id")
            return
        h._json(200, response)

    def _messages(self, h: Any) -> None:
        body = h._body()
        if body is None or (model := self._model(h, body, anthropic=True)) is None:
            return
        text = " ".join(self._words(body))
        message = {"id": f"msg_{os.urandom(8).hex()}", "type": "message", "role": "assistant",
                   "model": model, "content": [{"type": "text", "text": text}],
                   "stop_reason": "max_tokens", "stop_sequence": None,
                   "usage": {"input_tokens": 3, "output_tokens": len(text.split())}}  # fmt: skip
        h._json(200, message)

    def _count_tokens(self, h: Any) -> None:
        body = h._body()
        if body is None or self._model(h, body, anthropic=True) is None:
            return
        h._json(200, {"input_tokens": len(json.dumps(body.get("messages", [])).split())})

    def _batch(self, h: Any) -> None:
        body = h._body()
        if body is None or (model := self._model(h, body)) is None:
            return
        h._json(200, {"object": "list", "model": model, "data": []})

    def _tokenize(self, h: Any) -> None:
        body = h._body()
        if body is None or self._model(h, body) is None:
            return
        words = str(body.get("prompt", "")).split()
        tokens = [len(w) for w in words]
        h._json(200, {"count": len(tokens), "max_model_len": h.cfg.max_model_len,
                      "tokens": tokens, "token_strs": None})  # fmt: skip

    def _detokenize(self, h: Any) -> None:
        body = h._body()
        if body is None or self._model(h, body) is None:
            return
        h._json(200, {"prompt": " ".join("w" * int(t) for t in body.get("tokens", []))})

    # -- pooling and audio

    def _pool(self, h: Any, path: str) -> None:
        body = h._body()
        if body is None or (model := self._model(h, body)) is None:
            return
        data = [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}]
        h._json(200, {"object": "list", "model": model, "route": path, "data": data,
                      "usage": {"prompt_tokens": 1, "total_tokens": 1}})  # fmt: skip

    def _audio(self, h: Any) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        found = re.search(rb'name="model"\r\n\r\n([^\r]*)\r\n', raw)
        model = found.group(1).decode() if found else None
        if model not in self.served:
            h._error(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
            return
        h._json(200, {"text": "word word word", "model": model})
