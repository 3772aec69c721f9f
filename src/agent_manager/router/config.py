"""What `agent-manager serve` was asked for, checked before anything listens."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass, field

from agent_manager.errors import UsageError
from agent_manager.router.limits import ClientLimits

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
MIN_KEY_CHARS = 16  # off loopback, a key anyone could guess in a few tries protects nothing


@dataclass(frozen=True)
class RouterConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    idle_stop_s: float | None = None
    max_queue: int = 100
    max_wait_s: float = 600.0
    drain_timeout_s: float = 60.0
    switch_timeout_s: float = 1200.0
    api_key_env: str | None = None
    stop_agents_on_exit: bool = False
    debug: bool = False
    access_log: bool = False  # one line per request (on with --access-log or --debug)
    watch_period_s: float = 2.0  # how often Docker is asked what runs
    limits: ClientLimits = field(default_factory=ClientLimits)

    @property
    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None if self.api_key_env else None


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, option: str) -> float:
    """`30m`, `90s`, `1h`, `45` (seconds) → seconds."""
    match = _DURATION.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise UsageError(
            f"{option} '{text}' is not a duration.",
            hint="Use e.g. 90s, 30m or 1h (a bare number is seconds).",
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


MAX_SECONDS = 7 * 24 * 3600.0


def finite_seconds(value: float, option: str) -> float:
    """A number of seconds from the command line: `inf` and `nan` pass Click's `min=` check
    but break every timer downstream."""
    if not math.isfinite(value) or value > MAX_SECONDS:
        raise UsageError(
            f"{option} {value} is not a number of seconds the router can wait.",
            hint=f"Give a finite number of seconds, at most {MAX_SECONDS:.0f} (a week).",
        )
    return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(config: RouterConfig) -> None:
    """Off loopback, the router answers only clients holding a key; refuse to start without."""
    if config.api_key_env and not config.api_key:
        raise UsageError(
            f"--api-key-env names {config.api_key_env}, but {config.api_key_env} is not set.",
            hint=f"export {config.api_key_env}=<a secret key> (clients send it as their API key).",
        )
    if is_loopback(config.host):
        return
    key = config.api_key
    if not key:
        raise UsageError(
            f"Refusing to serve on {config.host} without an API key: anyone who can reach this "
            "machine could use (and switch) your agents.",
            hint="Add --api-key-env VAR naming a set variable holding a secret key, or keep the "
            "default --host 127.0.0.1.",
        )
    if len(key.strip()) < MIN_KEY_CHARS:
        raise UsageError(
            f"Refusing to serve on {config.host} with a weak key: {config.api_key_env} holds "
            f"fewer than {MIN_KEY_CHARS} characters (blanks aside).",
            hint=f"Set {config.api_key_env} to a long random secret, e.g. `openssl rand -hex 24`.",
        )
