"""The agent's `vllm serve` argv, cut into flags, as the compose file has it.

Both targets start from `serve_argv` (the one argv builder) and drop only what they set
themselves, so a cluster agent runs with exactly the flags a local one does.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_manager.spec.agents import Agent
from agent_manager.spec.serve_argv import serve_argv
from agent_manager.spec.vllm_args import flag_table


@dataclass(frozen=True)
class FlagGroup:
    """One flag as written and the values argparse gives it (`--x=1` stays one token)."""

    dest: str
    tokens: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.tokens[0].partition("=")[0]

    @property
    def values(self) -> tuple[str, ...]:
        head, has_inline, inline = self.tokens[0].partition("=")
        return (inline, *self.tokens[1:]) if has_inline else self.tokens[1:]


def flag_groups(args: list[str]) -> list[FlagGroup]:
    """Group a flag list the way argparse reads it. The args were checked by `check_flags`
    when the spec loaded, so every token here is a known flag or one of its values."""
    table = flag_table()
    groups: list[FlagGroup] = []
    i = 0
    while i < len(args):
        token = args[i]
        flag = table.lookup(token.partition("=")[0])
        if flag is None:  # pragma: no cover - the spec validator refuses unknown flags
            raise ValueError(f"unknown vLLM flag {token}")
        end = i + 1
        if flag.takes_value and "=" not in token:
            if flag.nargs == "+":
                while end < len(args) and not args[end].startswith("--"):
                    end += 1
            elif flag.nargs == "?":
                if end < len(args) and not args[end].startswith("-"):
                    end += 1
            else:
                end += 1
        groups.append(FlagGroup(flag.dest, tuple(args[i:end])))
        i = end
    return groups


def agent_flags(agent: Agent) -> list[FlagGroup]:
    """The flags after the model (the positional argument, which each target sets its way)."""
    return flag_groups(serve_argv(agent)[1:])


def flatten(groups: list[FlagGroup]) -> list[str]:
    return [token for group in groups for token in group.tokens]


def k8s_literal(text: str) -> str:
    """Kubernetes expands `$(VAR)` in container args and env values; `$$(` keeps it literal."""
    return text.replace("$(", "$$(")
