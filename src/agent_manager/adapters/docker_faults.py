"""Docker that does not answer (its socket gone, the daemon hung), in words: whatever docker-py
or urllib3 raise is "Docker is not answering", never their connection-pool text."""

from __future__ import annotations

from agent_manager.adapters.containers import DOCKER_DOWN_HINT
from agent_manager.errors import DockerUnavailableError

DOCKER_SILENT = "Docker is not answering"
_DOCKER_TRANSPORT = frozenset({"docker", "requests", "urllib3"})


def is_docker_fault(error: BaseException) -> bool:
    """An error of docker-py or of the HTTP stack under it."""
    return any(cls.__module__.split(".")[0] in _DOCKER_TRANSPORT for cls in type(error).__mro__)


def docker_fault(error: BaseException) -> DockerUnavailableError:
    """A docker-py failure in words; of the raw error only its type name."""
    name = type(error).__name__
    hung = "timeout" in name.lower() or "timed out" in str(error)
    return DockerUnavailableError(
        f"{DOCKER_SILENT} ({'no answer in time' if hung else 'connection lost'}: {name}).",
        hint=DOCKER_DOWN_HINT,
    )
