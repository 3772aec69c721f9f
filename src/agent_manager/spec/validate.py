"""Checks on spec values that need more than a type: secrets written as values, the keys of
`speculative`, and numbers vLLM can take. Each raises ValueError with the words pydantic shows
under the field's name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SERVED_NAME = re.compile(r"^[\w./:-]{1,128}$")
IMAGE_TAG_NAME = re.compile(r"^[\w][\w.-]{0,127}$")
# A local model folder: an absolute path (mounted read-only into the container).
LOCAL_MODEL = re.compile(r"^/[\w./+@-]*$")

GGUF_HINT = "llama.cpp quant; vLLM 0.33 cannot serve GGUF — use an AWQ/GPTQ/FP8 checkpoint"

# Known shapes of credentials. A value matching one is a secret written into a file, whatever
# the variable or key it sits under is called.
_TOKEN_SHAPES = (
    ("a Hugging Face token", re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}")),
    ("an API key (sk-…)", re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}")),
    (
        "a GitHub token",
        re.compile(r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{22,})"),
    ),
    ("a GitLab token", re.compile(r"(?<![A-Za-z0-9])glpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", re.compile(r"(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9-]{10,}")),
    ("an AWS access key", re.compile(r"(?<![A-Za-z0-9])AKIA[0-9A-Z]{16}(?![A-Za-z0-9])")),
    ("a Google API key", re.compile(r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{35}")),
)

# Tokens vLLM 0.33 accepts for --max-model-len is an int; no model it serves reaches this many.
MAX_CONTEXT_TOKENS = 16 * 1024 * 1024
# vLLM allocates per-sequence state for each of these; far above any single-GPU setting.
MAX_NUM_SEQS = 65536


def secret_shape(value: str) -> str | None:
    """What kind of credential `value` contains, or None."""
    for kind, pattern in _TOKEN_SHAPES:
        if pattern.search(value):
            return kind
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]" if path else f"[{index}]")


def refuse_secret_values(value: Any, what: str = "") -> None:
    """Refuse any string inside `value` that looks like a credential."""
    for where, text in _strings(value, what):
        kind = secret_shape(text)
        if kind is not None:
            at = f" at {where}" if where else ""
            raise ValueError(
                f"the value{at} looks like {kind}: never write a secret in a spec; put it in an "
                "environment variable and pass it by reference (e.g. '${MY_TOKEN}' in env, or "
                "api_key_env: MY_TOKEN)"
            )


@cache
def speculative_fields() -> tuple[frozenset[str], frozenset[str]]:
    """(keys a user may set, keys vLLM fills in itself) of vLLM's SpeculativeConfig."""
    path = resources.files("agent_manager") / "data" / "speculative-config-0.33.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return frozenset(data["fields"]), frozenset(data["set_by_vllm"])


def check_speculative(value: dict[str, Any]) -> None:
    import difflib

    allowed, internal = speculative_fields()
    for key in value:
        if not isinstance(key, str):
            raise ValueError(f"key {key!r} is not a name")
        if key in internal:
            raise ValueError(f"'{key}' is filled in by vLLM itself; remove it")
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            fix = (
                f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(sorted(allowed))}"
            )
            raise ValueError(f"vLLM's speculative config has no key '{key}'; {fix}")
    refuse_secret_values(value)


def whole_number(value: Any, low: int, high: int, unit: str) -> int:
    """`value` as an int in [low, high]: no bools, floats or strings that look like numbers."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number of {unit} from {low} to {high} (got {value!r})")
    if not low <= value <= high:
        raise ValueError(f"{value} is outside {low}-{high} {unit}")
    return value
