"""Turn any failure into a message, a hint and an exit code — in one place.

2: the user asked for something that cannot be (usage); 1: something failed at run time.
Tracebacks only with --debug or AGENT_MANAGER_DEBUG=1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

import typer
from typer.exceptions import TyperException

from agent_manager import ui
from agent_manager.errors import RUNTIME, USAGE, AgentManagerError

_debug = False


def set_debug(value: bool) -> None:
    global _debug
    _debug = value


def debug_enabled() -> bool:
    return _debug or os.environ.get("AGENT_MANAGER_DEBUG", "") not in ("", "0")


def render_error(error: AgentManagerError) -> None:
    ui.error(error.message, error.hint, details=error.details)


def run_cli(invoke: Callable[[], object]) -> NoReturn:
    """Run the Click/Typer app without its own error handling and exit with our codes."""
    try:
        result = invoke()
    except AgentManagerError as error:
        if debug_enabled():
            raise
        render_error(error)
        sys.exit(error.exit_code)
    except typer.Abort:
        ui.err().print("Aborted.")
        sys.exit(130)
    except KeyboardInterrupt:
        ui.err().print("Interrupted.")
        sys.exit(130)
    except TyperException as error:
        # Typer's (vendored) Click errors: bad option, missing argument, bad value. Click sets
        # exit_code 2 on usage errors.
        show = getattr(error, "show", None)
        if callable(show):
            show()
        sys.exit(getattr(error, "exit_code", USAGE))
    except OSError as error:
        # An OS failure no module turned into words yet: still name the path.
        if debug_enabled():
            raise
        from agent_manager.adapters.docker_faults import docker_fault, is_docker_fault

        if is_docker_fault(error):  # requests' ConnectionError is an OSError
            render_error(docker_fault(error))
            sys.exit(RUNTIME)
        from agent_manager.fsio import file_error

        named = file_error(error, error.filename or "a file", "use")
        render_error(named)
        sys.exit(named.exit_code)
    except Exception as error:  # noqa: BLE001 - the last line of defence against tracebacks
        if debug_enabled():
            raise
        from agent_manager.adapters.docker_faults import docker_fault, is_docker_fault

        if is_docker_fault(error):
            render_error(docker_fault(error))
            sys.exit(RUNTIME)
        render_error(
            AgentManagerError(
                f"Unexpected error: {type(error).__name__}: {error}",
                hint="Run again with --debug for the full traceback, and report it.",
            )
        )
        sys.exit(RUNTIME)
    sys.exit(result if isinstance(result, int) else 0)


def fail(message: str, hint: str | None = None, code: int = RUNTIME) -> NoReturn:
    error = AgentManagerError(message, hint)
    error.exit_code = code
    raise error
