"""YAML for Go readers: kubectl and Helm, like Compose, read YAML with Go parsers, so strings
that would read as numbers are quoted the same way the compose renderer quotes them."""

from __future__ import annotations

from typing import Any

import yaml

# One quoting rule for every generated YAML file (see `_reads_as_number` there).
from agent_manager.compose.render import _ComposeDumper as GoSafeDumper


def dump_yaml(data: Any) -> str:
    return yaml.dump(
        data, Dumper=GoSafeDumper, sort_keys=False, default_flow_style=False, width=4096
    )


def commented(header: list[str], data: Any) -> str:
    """`# ` header lines (what the file is, how to use it), then the YAML."""
    return "".join(f"# {line}\n" for line in header) + dump_yaml(data)
