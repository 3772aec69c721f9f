"""How `launch` looks: the live phase line, the result, a failure explained, an interrupt."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from agent_manager import ui

if TYPE_CHECKING:
    from agent_manager.diagnosis.diagnose import Failure
    from agent_manager.spec.workspace import Workspace
    from agent_manager.switch.context import (
        LaunchFailed,
        LaunchOptions,
        LaunchProgress,
        LaunchResult,
    )


def failure_dict(failure: Failure) -> dict[str, Any]:
    return {
        "kind": failure.kind,
        "summary": failure.summary,
        "fix": failure.fix,
        "matched_lines": failure.matched_lines,
    }


def render_failure(agent: str, failure: Failure, container: str | None = "") -> None:
    """Summary, what to do, then the log lines that show it (verbatim, markup off). The
    "Full log" line only when a container exists for `logs` to read (None: Compose made none)."""
    ui.error(
        f"{agent} did not start: {failure.summary}",
        failure.fix,
        hint_label="What to do",
        log_lines=failure.matched_lines,
    )
    if container is not None:
        ui.err().print(ui.with_home(f"Full log: agent-manager logs {agent}"), markup=False)


class PhaseView:
    """The live status line on a terminal; one line per phase change otherwise."""

    def __init__(self, agent: str):
        self.agent = agent
        self.live = ui.stderr_is_terminal()
        self.status: Any = None
        self.last_phase: str | None = None

    # Lines printed while the live status runs appear above it: Rich keeps the status last.
    def message(self, text: str) -> None:
        ui.info(text)

    def warning(self, text: str) -> None:
        ui.warn(text)

    def phase(self, phase: str, elapsed: float) -> None:
        if self.live:
            text = f"{escape(self.agent)}: {escape(phase)} · {elapsed:.1f} s"
            if self.status is None:
                self.status = ui.err().status(text)
                self.status.start()
            else:
                self.status.update(text)
        elif phase != self.last_phase:
            ui.err().print(f"  {elapsed:6.1f} s  {phase}", markup=False)
        self.last_phase = phase

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def render_launched(result: LaunchResult) -> None:
    console = ui.out()
    if result.ready:
        how = " (woken from sleep)" if result.switch == "hot" else ""
        console.print(f"{result.agent} is ready in {result.seconds:.1f} s{how}.", markup=False)
    else:
        console.print(
            f"{result.agent} started (container {result.container}); not waiting for it.",
            markup=False,
        )
    console.print(f"  endpoint:  {result.endpoint}", markup=False)
    console.print(f"  model:     {result.served_name}", markup=False)
    if not result.ready:
        ui.hint(f"Follow its startup with `agent-manager logs {result.agent} -f`.")


def render_interrupted(progress: LaunchProgress) -> None:
    """Ctrl-C while following a launch: say what was left running and what to do."""
    name = progress.agent
    console = ui.err()
    if progress.container is None and not progress.compose_started:
        stopped = f" (agents already stopped: {', '.join(progress.stopped)})"
        console.print(
            f"\nInterrupted before any container of {name} was created: nothing was left "
            f"running{stopped if progress.stopped else ''}.",
            markup=False,
        )
        console.print(ui.with_home(f"  Launch again: agent-manager launch {name}"), markup=False)
        return
    console.print(
        f"\nStopped following {escape(name)}; its container is left as it is.", markup=True
    )
    console.print(ui.with_home(f"  Follow its log: agent-manager logs {name} -f"), markup=False)
    console.print(ui.with_home(f"  Stop it:        agent-manager stop {name}"), markup=False)


def switch_with_view(
    ws: Workspace,
    agent: str,
    options: LaunchOptions | None,
    on_failure: Callable[[LaunchFailed], None],
) -> LaunchResult:
    """Switch to `agent` with the live phase line; a failure is handed to `on_failure` (which
    renders it) and exits 1, Ctrl-C says what was stopped and exits 130."""
    import typer

    from agent_manager.switch.context import LaunchEvents, LaunchFailed, LaunchProgress
    from agent_manager.switch.core import switch_to

    progress = LaunchProgress(agent)
    view = PhaseView(agent)
    events = LaunchEvents(message=view.message, warning=view.warning, phase=view.phase)
    try:
        return switch_to(ws, agent, options, events, progress)
    except LaunchFailed as failed:
        view.close()
        on_failure(failed)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        view.close()
        render_interrupted(progress)
        raise typer.Exit(130) from None
    finally:
        view.close()
