"""vLLM's dev-mode endpoints (sleep mode), served only with `--enable-sleep-mode` and
`VLLM_SERVER_DEV_MODE=1`: /sleep, /wake_up, /is_sleeping, /collective_rpc, /reset_prefix_cache.

No API key guards them (vLLM checks keys only under /v1 and friends), which is why a sleep
agent must bind 127.0.0.1. Every call raises `DevApiError` with what answered, or did not.
"""

from __future__ import annotations

from typing import Any

from agent_manager.adapters.http import quick_client
from agent_manager.errors import AgentManagerError


class DevApiError(AgentManagerError):
    """A sleep-mode call failed: refused, timed out, or not answered."""


class DevApiTimeout(DevApiError):
    """The call got no answer in time (the server may still be working on it)."""


def _call(method: str, url: str, timeout: float, **kwargs: Any) -> Any:
    import httpx

    path = url.split("/", 3)[-1]
    try:
        response = quick_client().request(method, url, timeout=timeout, **kwargs)
    except httpx.TimeoutException:
        raise DevApiTimeout(f"/{path} did not answer within {timeout:.1f} s.") from None
    except httpx.HTTPError as error:
        raise DevApiError(f"/{path} did not answer ({type(error).__name__}).") from None
    if response.status_code == 404:
        raise DevApiError(
            f"/{path} answered 404: the server does not run in sleep mode.",
            hint="Recreate the agent's container so it gets --enable-sleep-mode and "
            "VLLM_SERVER_DEV_MODE=1 (`agent-manager launch` with switch: sleep does).",
        )
    if response.status_code != 200:
        text = response.text.strip().replace("\n", " ")[:200]
        raise DevApiError(f"/{path} answered HTTP {response.status_code}: {text or '(empty)'}")
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def sleep(url: str, level: int, mode: str, timeout: float) -> dict[str, Any]:
    """`POST /sleep?level=N&mode=M`: vLLM answers {"status": "sleeping", "level": N} once the
    engine sleeps (mode "wait" first lets the in-flight requests finish)."""
    return _answer(_call("POST", f"{url}/sleep?level={level}&mode={mode}", timeout), "/sleep")


def wake_up(url: str, tags: list[str] | None, timeout: float) -> dict[str, Any]:
    """`POST /wake_up[?tags=...]`: {"status": "awake" | "sleeping", "tags": [...]}; "sleeping"
    while some tag still sleeps (vLLM resumes scheduling only when none does)."""
    query = "?" + "&".join(f"tags={tag}" for tag in tags) if tags else ""
    return _answer(_call("POST", f"{url}/wake_up{query}", timeout), "/wake_up")


def is_sleeping(url: str, timeout: float = 2.0) -> bool:
    answer = _call("GET", f"{url}/is_sleeping", timeout)
    if not isinstance(answer, dict) or not isinstance(answer.get("is_sleeping"), bool):
        raise DevApiError(f"/is_sleeping answered {answer!r}, not {{'is_sleeping': bool}}.")
    return bool(answer["is_sleeping"])


def collective_rpc(url: str, method: str, timeout: float) -> list[Any] | None:
    """The workers' results ({"results": [...]}), or None for vLLM's empty 200."""
    answer = _call(
        "POST", f"{url}/collective_rpc", timeout, json={"method": method, "timeout": timeout}
    )
    if answer is None:
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
        raise DevApiError(f"/collective_rpc answered {answer!r}, not {{'results': [...]}}.")
    return list(answer["results"])


def reset_prefix_cache(url: str, timeout: float) -> bool:
    """vLLM 0.33 answers {"success": bool}: false while blocks are still held."""
    answer = _call("POST", f"{url}/reset_prefix_cache", timeout)
    if not isinstance(answer, dict) or not isinstance(answer.get("success"), bool):
        raise DevApiError(f"/reset_prefix_cache answered {answer!r}, not {{'success': bool}}.")
    return bool(answer["success"])


def _answer(answer: Any, path: str) -> dict[str, Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get("status"), str):
        raise DevApiError(f"{path} answered {answer!r}, not {{'status': ...}}.")
    return answer
