"""Reading a spec's YAML strictly: a size cap, no aliases, no duplicate keys, a mapping on top.

PyYAML's safe loader lets a later duplicate key win silently and expands anchors without limit
(a 600-byte spec became a 6.9 MB compose file). A spec is a handful of `field: value` lines, so
both are refused here, with the line, before pydantic sees the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from agent_manager.errors import SpecError

# A spec is a few hundred bytes; anything near this is not a spec (and would be slow to parse).
MAX_SPEC_BYTES = 1024 * 1024


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and duplicate mapping keys."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(
                event.start_mark.line + 1,
                f"YAML alias '*{event.anchor}' (anchors and aliases are not allowed in specs)",
                "Write each value out in full.",
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key (a list or mapping used as a key)
                raise _Refused(line, "a key that is not a plain name", None) from None
            if first is not None:
                raise _Refused(
                    line,
                    f"'{key}' is given twice (first on line {first})",
                    "Keep one of them; YAML would silently use the last.",
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    def __init__(self, line: int, problem: str, hint: str | None):
        super().__init__(problem)
        self.line = line
        self.problem = problem
        self.hint = hint


def check_spec_size(path: Path, size: int) -> None:
    if size > MAX_SPEC_BYTES:
        raise SpecError(
            f"{path}: {size / 1024 / 1024:.1f} MiB is not an agent spec (the limit is "
            f"{MAX_SPEC_BYTES // 1024 // 1024} MiB; a spec is a few dozen lines).",
            hint="Move the file out of agents/; only agent specs belong there.",
        )


def load_spec_mapping(path: Path, text: str) -> tuple[dict[Any, Any], dict[Any, int]]:
    """The spec's top-level mapping and each top-level key's 1-based line, or a SpecError."""
    check_spec_size(path, len(text.encode("utf-8", "surrogatepass")))
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _Refused as refused:
        raise SpecError(f"{path}:{refused.line}: {refused.problem}.", hint=refused.hint) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(
            f"{where}: this is not valid YAML ({problem}).",
            hint="Check indentation and the 'key: value' form on that line.",
        ) from None
    if data is None:
        raise SpecError(
            f"{path} is empty.",
            hint="A spec needs at least 'model:' and 'port:'; copy one of the default specs.",
        )
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({data!r:.40})"
        raise SpecError(
            f"{path}: expected 'field: value' lines, found {kind}.",
            hint="Start from a default spec (`agent-manager init DIR` writes them).",
        )
    return data, _key_lines(text)


def _key_lines(text: str) -> dict[Any, int]:
    """Top-level key → 1-based line number, for messages."""
    try:
        node = yaml.compose(text, Loader=_StrictLoader)  # noqa: S506
    except (yaml.YAMLError, _Refused):
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {key.value: key.start_mark.line + 1 for key, _ in node.value}
