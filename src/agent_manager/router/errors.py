"""The answers the router gives itself, in OpenAI's error shape: a full queue (429), a wait
past --max-wait, a failed start, a request cancelled (503)."""

from __future__ import annotations


class RouterError(Exception):
    """A request the router answers itself, in OpenAI's error shape."""

    status = 503
    kind = "ServiceUnavailableError"

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class QueueFull(RouterError):
    status = 429
    kind = "RateLimitError"


class WaitTimedOut(RouterError):
    pass


class SwitchFailed(RouterError):
    """The agent did not start; every request queued for it gets this diagnosis."""

    def __init__(self, agent: str, summary: str, fix: str | None, kept: bool = False):
        text = f"{agent} did not start: {summary}"
        super().__init__(f"{text} {fix}" if fix else text)
        self.kept = kept  # Docker failed the switch: the running agent is left serving
        self.agent = agent
        self.summary = summary
        self.fix = fix


class Cancelled(RouterError):
    """An in-flight request ended by the router (drain limit or shutdown)."""
