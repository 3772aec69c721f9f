"""Pure: why did an agent fail to start? Log lines + exit code + state → one Failure.

The rules live in `failure_rules.py` (tried in order; the first rule with a matching line
wins); an unrecognised failure quotes the log's tail.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent_manager.diagnosis.failure_rules import RULES
from agent_manager.diagnosis.failure_text import Context, Failure, message

__all__ = ["Context", "Failure", "diagnose"]

UNRECOGNISED_TAIL = 30
MAX_MATCHED = 6


def diagnose(lines: Sequence[str], ctx: Context) -> Failure:
    """Classify a failed start. Never raises; an unrecognised failure quotes the log's tail."""
    text = [line.rstrip("\n") for line in lines]
    for rule in RULES:
        matched = [line for line in text if any(p.search(line) for p in rule.patterns)]
        if matched:
            summary, fix = rule.explain(text, ctx)
            return Failure(rule.kind, summary, fix, _dedupe(matched)[-MAX_MATCHED:])
    return _unrecognised(text, ctx)


def _unrecognised(lines: list[str], ctx: Context) -> Failure:
    if ctx.exit_code == 137:
        what = "The container was killed (exit code 137: out of host RAM, or SIGKILL)."
    elif ctx.exit_code is not None:
        what = f"vLLM exited with code {ctx.exit_code} for a reason agent-manager does not know."
    elif ctx.state:
        what = f"The container is {ctx.state} for a reason agent-manager does not know."
    else:
        what = "The agent failed for a reason agent-manager does not know."
    tail = [line for line in lines if line.strip()][-UNRECOGNISED_TAIL:]
    shown = f"the last {len(tail)} log lines are below" if tail else "the log is empty"
    return Failure(
        "unrecognised",
        f"{what} {shown[0].upper()}{shown[1:]}.",
        f"See the whole log with `agent-manager logs {ctx.agent}`.",
        tail,
    )


def _dedupe(lines: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for line in lines:
        key = message(line)
        if key not in seen:
            seen.add(key)
            kept.append(line)
    return kept
