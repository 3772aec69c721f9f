"""Pure: the pieces a failure rule is made of (Failure, Context, line matching helpers)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# vLLM prefixes lines with `(APIServer pid=7) ERROR 11-23 10:01:02 [file.py:12] `: strip it when
# quoting numbers, keep it in the lines we show (it tells which process failed).
_PREFIX = re.compile(r"^\(\S+ pid=\d+\)\s+[A-Z]+\s+\d\d-\d\d \d\d:\d\d:\d\d \[[^\]]*\]\s?")


@dataclass(frozen=True)
class Failure:
    """What happened (summary), what to do (fix), and the log lines that show it."""

    kind: str
    summary: str
    fix: str
    matched_lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """Facts the caller knows that make the advice concrete."""

    agent: str
    exit_code: int | None = None
    state: str | None = None  # container state: exited, dead, ... or "not-created"
    # "pid 1234 (Xorg): 1.2 GiB" for each process NVML says holds GPU memory.
    gpu_holders: list[str] = field(default_factory=list)
    # The spec's max_context when the caller knows it (no "use auto" advice to users on auto).
    max_context: int | str | None = None
    # The agent's spec file as the user would type it (the workspace may be anywhere: --home).
    spec_path: Path | None = None


@dataclass(frozen=True)
class Rule:
    kind: str
    patterns: tuple[re.Pattern[str], ...]
    explain: Callable[[list[str], Context], tuple[str, str]]


def rx(*texts: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(text, re.IGNORECASE) for text in texts)


def message(line: str) -> str:
    return _PREFIX.sub("", line).strip()


def search(lines: list[str], pattern: str) -> re.Match[str] | None:
    compiled = re.compile(pattern)
    for line in lines:
        match = compiled.search(message(line))
        if match:
            return match
    return None


def spec_file(ctx: Context) -> str:
    return str(ctx.spec_path) if ctx.spec_path is not None else f"the spec of {ctx.agent}"
