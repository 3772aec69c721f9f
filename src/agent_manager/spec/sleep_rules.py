"""Pure: the rules a `switch: sleep` spec must keep beyond its fields' own types.

- Sleep mode runs vLLM in dev mode, whose endpoints no API key guards: loopback binds only.
- vLLM's CPU engine has no sleep mode: `ModelConfig` raises "Sleep mode is not supported on
  current platform." (vllm/config/model.py, 0.33) and the server never starts. A spec that
  writes both `engine: cpu` and `switch: sleep` is refused; where one of the two is inherited
  (workspace `defaults:`) or comes from `launch --engine cpu`, that agent switches cold and
  the caller shows the one-line notice returned here.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Protocol

from agent_manager.errors import SpecError
from agent_manager.spec.settings import SETTINGS_FILE


class SleepFields(Protocol):
    """The fields of an AgentSpec these rules read (spec/agents.py imports this module)."""

    @property
    def engine(self) -> str: ...
    @property
    def switch(self) -> str: ...
    @property
    def bind(self) -> str: ...
    @property
    def env(self) -> dict[str, str]: ...


DEV_MODE_ENV = "VLLM_SERVER_DEV_MODE"
VLLM_NO_SLEEP_ON_CPU = "Sleep mode is not supported on current platform"


def check_sleep_bind(
    name: str, path: Path, lines: dict[Any, int], spec: SleepFields, from_defaults: bool
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


def cpu_sleep_notice(name: str, why: str) -> str:
    return (
        f"{name}: {why}, and vLLM's CPU engine has no sleep mode "
        f'("{VLLM_NO_SLEEP_ON_CPU}"); it switches cold.'
    )


def cpu_sleep_notice_for(
    name: str, path: Path, lines: dict[Any, int], data: dict[str, Any], spec: SleepFields
) -> str | None:
    """None, or the notice when the agent must switch cold instead (the caller turns sleep
    off); refuses a spec that writes both fields itself."""
    if spec.engine != "cpu" or spec.switch != "sleep":
        return None
    if data.get("engine") == "cpu" and data.get("switch") == "sleep":
        raise SpecError(
            f"{path}:{lines.get('engine', '?')}: {name} asks for 'engine: cpu' and, at line "
            f"{lines.get('switch', '?')}, 'switch: sleep': vLLM's CPU engine has no sleep mode "
            f'and would refuse to start ("{VLLM_NO_SLEEP_ON_CPU}").',
            hint=f"Set 'switch: cold' in {path}, or 'engine: cuda' to keep hot switching.",
        )
    inherited = "'engine: cpu'" if "engine" not in data else "'switch: sleep'"
    return cpu_sleep_notice(
        name, f"{inherited} comes from the workspace defaults in {SETTINGS_FILE}"
    )
