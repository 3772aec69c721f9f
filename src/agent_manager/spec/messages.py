"""A spec's validation error in words: the file and line, the field, and what to write."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent_manager.errors import SpecError

# Settings vLLM removed: what to write instead.
REMOVED_SETTINGS = {
    "swap_space": (
        "vLLM removed its swap-space flag in 0.18. For CPU KV-cache offload put "
        "'--kv-offloading-size', '<GiB>' in extra_args; to offload weights use "
        "'--cpu-offload-gb', '<GiB>'."
    ),
    "gguf": "vLLM 0.33 cannot serve GGUF; use an AWQ/GPTQ/FP8 checkpoint.",
}

# Fields under vLLM's own names: what the spec calls them.
RENAMED_FIELDS = {
    "max_model_len": "max_context",
    "gpu_memory_utilization": "gpu_memory_fraction",
    "served_model_name": "served_name",
    "enable_prefix_caching": "prefix_caching",
    "tensor_parallel": "tensor_parallel_size",
    "speculative_config": "speculative",
    "api_key": "api_key_env",
    "environment": "env",
    "image": "image_tag",
}


def spec_error(
    path: Path, lines: dict[Any, int], exc: ValidationError, fields: list[str]
) -> SpecError:
    """pydantic's first complaint as one sentence: file, line, field, what is allowed."""
    error = exc.errors()[0]
    loc = error["loc"]
    field = str(loc[0]) if loc else ""
    where = f"{path}:{lines[field]}" if field in lines else str(path)
    if error["type"] == "extra_forbidden" and len(loc) == 2 and loc[0] == "cpu":
        # Inside the `cpu:` block (spec/cpu_block.py): name the key and what the block takes.
        return SpecError(
            f"{where}: unknown key '{loc[1]}' in 'cpu'.",
            hint="The cpu: block takes model, max_context and cpu_kv_cache_gib.",
        )
    if error["type"] == "extra_forbidden":
        suggestion = RENAMED_FIELDS.get(field) or next(
            iter(difflib.get_close_matches(field, fields, n=1)), None
        )
        hint = f"Did you mean '{suggestion}'?" if suggestion else None
        return SpecError(
            f"{where}: unknown field '{field}'.",
            hint=hint or f"Allowed fields: {', '.join(fields)}.",
        )
    if error["type"] == "missing":
        return SpecError(f"{path}: required field '{field}' is missing.")
    message = error["msg"].removeprefix("Value error, ").rstrip(".")
    dotted = ".".join(str(part) for part in loc)
    if error["type"] in (
        "finite_number",
        "int_type",
        "int_parsing",
        "float_parsing",
        "bool_parsing",
        "string_type",
        "dict_type",
        "list_type",
        "float_type",
        "bool_type",
        "literal_error",
    ):
        message = f"{message} (got {error.get('input')!r})"
    return SpecError(f"{where}: '{dotted}': {message}.")
