"""What an agent speaks: tool-call and reasoning parsers, the model's task (which routes it
serves), aliases clients may ask for, and how long it idles before it stops.

Parser names are vLLM 0.33.0's own registries (`data/parsers-0.33.0.json`, written from the
wheel by scripts/vendor_parsers.py); `none` turns a parser off, e.g. over a workspace default.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from importlib import resources
from typing import Annotated, Literal

from pydantic import AfterValidator

from agent_manager.spec.vllm_args import VLLM_VERSION

PARSERS_FILE = f"parsers-{VLLM_VERSION}.json"
OFF = "none"
# generate: chat, completions, responses, messages (every agent); pooling: embeddings, score,
# rerank, classify, pooling; transcription: audio transcriptions and translations.
Task = Literal["generate", "pooling", "transcription"]
# Minutes without a request before `serve` stops (or puts to sleep) the agent; 0 = never.
# 30: a cold start costs 30-120 s on vLLM (Ollama's 5 min suits loads of a few seconds).
DEFAULT_IDLE_MINUTES = 30.0
ROUTER_ONLY = {"aliases", "idle_minutes"}  # not in the container: left out of the spec hash
_ALIAS = re.compile(r"^[\w./:-]{1,128}$")


@cache
def parser_names() -> dict[str, frozenset[str]]:
    """{"tool_parsers": names, "reasoning_parsers": names} of vLLM 0.33.0."""
    text = (resources.files("agent_manager") / "data" / PARSERS_FILE).read_text()
    data = json.loads(text)
    return {key: frozenset(data[key]) for key in ("tool_parsers", "reasoning_parsers")}


def _checker(kind: str, flag: str) -> AfterValidator:
    def check(value: str | None) -> str | None:
        if value is None or value == OFF:
            return None
        names = parser_names()[kind]
        if value not in names:
            close = difflib.get_close_matches(value, sorted(names), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ValueError(
                f"'{value}' is not a vLLM {VLLM_VERSION} {flag} name; {hint}allowed: "
                f"{', '.join(sorted(names))}, or '{OFF}'"
            )
        return value

    return AfterValidator(check)


def _aliases(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if not _ALIAS.match(value):
            raise ValueError(f"alias '{value}': use letters, digits and . _ - / : only")
        if value in seen:
            raise ValueError(f"alias '{value}' is listed twice")
        seen.add(value)
    return values


ToolParser = Annotated[str | None, _checker("tool_parsers", "--tool-call-parser")]
ReasoningParser = Annotated[str | None, _checker("reasoning_parsers", "--reasoning-parser")]
Aliases = Annotated[list[str], AfterValidator(_aliases)]


def serving_argv(tool_parser: str | None, reasoning_parser: str | None, task: Task) -> list[str]:
    """The flags these fields set (after the parsers were checked)."""
    argv: list[str] = []
    if task == "pooling":
        argv += ["--runner", "pooling"]
    if tool_parser:
        argv += ["--enable-auto-tool-choice", "--tool-call-parser", tool_parser]
    if reasoning_parser:
        argv += ["--reasoning-parser", reasoning_parser]
    return argv
