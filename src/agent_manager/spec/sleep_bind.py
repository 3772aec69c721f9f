"""Sleep mode runs vLLM in dev mode, whose endpoints no API key guards: loopback only."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from agent_manager.errors import SpecError
from agent_manager.spec.settings import SETTINGS_FILE

# What `switch: sleep` sets in the container; the spec may not set it too.
DEV_MODE_ENV = "VLLM_SERVER_DEV_MODE"


def check_sleep_bind(
    name: str,
    path: Path,
    lines: dict[Any, int],
    spec: Any,  # an AgentSpec (spec/agents.py imports this module)
    from_defaults: bool,
) -> None:
    """Sleep mode needs vLLM's dev mode, whose endpoints no API key guards: loopback only."""
    dev_mode = spec.switch == "sleep" or spec.env.get(DEV_MODE_ENV, "0") not in ("", "0")
    if not dev_mode or ipaddress.ip_address(spec.bind).is_loopback:
        return
    where = f"{path}:{lines['bind']}" if "bind" in lines else str(path)
    why = (
        f"'switch: sleep' (from the workspace defaults in {SETTINGS_FILE})"
        if from_defaults
        else "'switch: sleep'"
        if spec.switch == "sleep"
        else f"env {DEV_MODE_ENV}"
    )
    raise SpecError(
        f"{where}: {name} binds {spec.bind}, but {why} runs vLLM in dev mode, which serves "
        "/sleep, /wake_up, /collective_rpc and /reset_prefix_cache without authentication "
        "(api_key_env does not guard them): anyone who reaches the port could stop the model "
        "or run methods in its workers.",
        hint=f"Set 'bind: 127.0.0.1' in {path} (reach it from elsewhere through "
        "`agent-manager serve` or an SSH tunnel), or set 'switch: cold' for this agent.",
    )
