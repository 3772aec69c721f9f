"""`status`'s line about the router: what it does and when the active agent's idle stop comes."""

from __future__ import annotations

from agent_manager.cli.runtime_cmd import _router_line
from agent_manager.router.state_file import RouterView

BASE = {"url": "http://127.0.0.1:8080", "pid": 41235, "answering": True, "switches": 3}


def test_the_router_line_shows_the_active_agents_idle_stop():
    waiting = RouterView(**BASE, active="po", idle_stop_s=1800, idle_left_s=754.2)
    assert _router_line(waiting) == (
        "Router: http://127.0.0.1:8080/v1 (pid 41235), active agent: po, queue: empty, "
        "switches: 3, idle stop after 30m00s (12m34s left)."
    )
    busy = RouterView(**BASE, active="po", queue={"architect": 2}, idle_stop_s=1800)
    assert _router_line(busy).endswith(
        "queue: architect 2, switches: 3, idle stop after 30m00s (in use)."
    )


def test_no_idle_part_without_an_active_agent_or_a_limit():
    assert _router_line(RouterView(**BASE)).endswith(
        "active agent: none, queue: empty, switches: 3."
    )
    never = RouterView(**BASE, active="po", idle_stop_s=None)
    assert _router_line(never).endswith("switches: 3.")
