"""Pure: which startup phase a vLLM 0.33 log line (or a `compose up` line) announces.

The lines are vLLM's own (FACTS.md §5; tests/fixtures/vllm-0.32-cpu/ holds a real server's
log). A line that announces nothing returns None; the phase shown stays the last one announced.

vLLM downloads weights inside "Starting to load model" with its progress bars off, so a
download and a load look the same in the log: that phase is "downloading or loading weights".
"""

from __future__ import annotations

import re

PULLING = "pulling image"
CREATING = "creating container"
STARTING = "starting vLLM"
CONFIG = "reading model config"
ENGINE = "initialising engine"
DOWNLOADING = "downloading weights"
LOADING = "downloading or loading weights"
COMPILING = "compiling (torch.compile)"
KV_SIZING = "sizing KV cache"
GRAPHS = "capturing CUDA graphs"
WARMUP = "warming up"
SERVING = "server up, checking /health"

_PHASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), phase)
    for pattern, phase in (
        (r"\bPulling\b|Pulling fs layer|Downloading \[|Pull complete", PULLING),
        (r"Container \S+\s+(Creating|Recreate|Starting)", CREATING),
        (
            # 0.32+ prints its version in the logo: "█▄█▀ █ ... version 0.32.0".
            r"Automatically detected platform|vLLM server version|vLLM API server version"
            r"|█.*\bversion \d+\.\d+",
            STARTING,
        ),
        (r"non-default args:|Resolved architecture:|Using max model len", CONFIG),
        (r"Initializing a V1 LLM engine", ENGINE),
        (r"Time spent downloading weights|Fetching \d+ files|\.safetensors:\s+\d+%", DOWNLOADING),
        (
            r"Starting to load model|Loading safetensors checkpoint shards|Loading weights took",
            LOADING,
        ),
        # Not "Enforce eager set, disabling torch.compile, ...": that line says it is off.
        (
            r"for vLLM's torch\.compile|torch\.compile took|Dynamo bytecode transform"
            r"|Compiling a graph|compiled graph",
            COMPILING,
        ),
        (
            r"Profiling CUDA graph memory|Estimated CUDA graph memory|Available KV cache memory",
            KV_SIZING,
        ),
        (r"Capturing CUDA graphs", GRAPHS),
        (r"Graph capturing finished|init engine \(profile", WARMUP),
        (r"Starting vLLM (API )?server|Application startup complete\.", SERVING),
    )
)

_WEIGHTS = re.compile(r"Model loading took ([\d.]+ GiB) memory")
_KV_TOKENS = re.compile(r"KV cache size: ([\d,]+) tokens")

# The ready line: the socket is listening from here on (see FACTS.md §4).
READY_LINE = re.compile(r"Application startup complete\.|Starting vLLM (API )?server on")


def phase_of(line: str) -> str | None:
    """The phase this line starts, with a detail where the line carries one."""
    weights = _WEIGHTS.search(line)
    if weights:
        return f"weights loaded ({weights.group(1)})"
    kv = _KV_TOKENS.search(line)
    if kv:
        return f"KV cache sized ({kv.group(1)} tokens)"
    for pattern, phase in _PHASES:
        if pattern.search(line):
            return phase
    return None


def announces_ready(line: str) -> bool:
    return READY_LINE.search(line) is not None
