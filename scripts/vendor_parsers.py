#!/usr/bin/env python3
"""Write src/agent_manager/data/parsers-<version>.json from a vLLM wheel's own registries.

    pip download vllm==0.33.0 --no-deps -d /tmp/vllm-whl
    python3 scripts/vendor_parsers.py /tmp/vllm-whl/vllm-0.33.0-*.whl

The names are the keys of `_TOOL_PARSERS_TO_REGISTER` (vllm/tool_parsers/__init__.py) and
`_REASONING_PARSERS_TO_REGISTER` (vllm/reasoning/__init__.py): what `--tool-call-parser` and
`--reasoning-parser` accept without a plugin. Read with `ast`, nothing of vLLM is imported.
Standard library only.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import zipfile
from pathlib import Path

REGISTRIES = {
    "tool_parsers": ("vllm/tool_parsers/__init__.py", "_TOOL_PARSERS_TO_REGISTER"),
    "reasoning_parsers": ("vllm/reasoning/__init__.py", "_REASONING_PARSERS_TO_REGISTER"),
}
DATA = Path(__file__).resolve().parents[1] / "src" / "agent_manager" / "data"


def registry_names(source: str, variable: str) -> list[str]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == variable for t in node.targets
        ):
            assert isinstance(node.value, ast.Dict)
            return sorted(ast.literal_eval(key) for key in node.value.keys if key is not None)
    raise SystemExit(f"{variable} not found")


def main(wheel: str) -> int:
    version = re.search(r"vllm-([\d.]+)-", Path(wheel).name)
    if version is None:
        raise SystemExit(f"{wheel} is not named like a vLLM wheel")
    result: dict[str, object] = {"vllm_version": version.group(1)}
    with zipfile.ZipFile(wheel) as archive:
        for key, (member, variable) in REGISTRIES.items():
            result[key] = registry_names(archive.read(member).decode(), variable)
    target = DATA / f"parsers-{version.group(1)}.json"
    target.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
