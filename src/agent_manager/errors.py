"""One error family for everything a user can cause or meet.

Raised anywhere, rendered once by the CLI (`cli/errors.py`): a short message, a hint that says
what to do, and the exit code (2 for usage mistakes, 1 for runtime failures).
"""

from __future__ import annotations

# The logger on which readers of workspace files warn (the CLI prints each as one line).
WORKSPACE_WARNINGS = "agent_manager.workspace"

USAGE = 2
RUNTIME = 1


class AgentManagerError(Exception):
    """A failure with words a user can act on."""

    exit_code = RUNTIME

    def __init__(self, message: str, hint: str | None = None, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Extra lines shown under the message verbatim (e.g. the log lines a diagnosis matched).
        self.details = details or []


class UsageError(AgentManagerError):
    """The user asked for something that cannot be: bad spec, unknown agent, bad option."""

    exit_code = USAGE


class SpecError(UsageError):
    """An agent spec file is invalid. The message names the file and the field."""


class UnknownAgentError(UsageError):
    """An agent name on the command line matches no spec."""


class DockerUnavailableError(AgentManagerError):
    """The Docker Engine or the Compose v2 plugin cannot be reached."""


class GpuUnavailableError(AgentManagerError):
    """NVML, the NVIDIA driver or a GPU is missing."""


class HubError(AgentManagerError):
    """The Hugging Face hub refused or could not be reached."""


class LaunchError(AgentManagerError):
    """An agent failed to start or to become ready."""


class AgentApiError(AgentManagerError):
    """An agent's OpenAI-compatible API refused a request or did not answer."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        status: int | None = None,
        server_message: str | None = None,
    ):
        super().__init__(message, hint)
        self.status = status  # HTTP status, None when nothing answered
        self.server_message = server_message
