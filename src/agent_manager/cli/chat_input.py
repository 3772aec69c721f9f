"""What `chat` reads at a terminal, as `ollama run` does: line editing and history
(prompt_toolkit), multi-line input, and the slash commands /bye, /clear and /?.

Enter sends. A message that starts with \"\"\" goes on over several lines until a line that
ends with \"\"\"; Alt-Enter (or Esc then Enter) also starts a new line. History is kept in
$XDG_STATE_HOME/agent-manager/chat-history (~/.local/state/...), Up/Down walk it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

HELP = (
    'Enter sends; Alt-Enter adds a line, or wrap a message in """ … """. '
    "/clear forgets the conversation so far, /bye (or Ctrl-D) leaves, /? shows this."
)
LEAVE = ("/bye", "/exit", "/quit")
QUOTES = '"""'


def history_path() -> Path | None:
    base = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        home = os.environ.get("HOME", "")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".local", "state")
    return Path(base) / "agent-manager" / "chat-history"


class ChatInput:
    """Reads one message at a time; None when the user leaves (Ctrl-D, Ctrl-C, /bye)."""

    def __init__(
        self,
        history: Path | None = None,
        on_ready: Callable[[], None] | None = None,
        **session_io: Any,
    ) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings

        keys = KeyBindings()

        @keys.add("escape", "enter")
        def _new_line(event: Any) -> None:
            event.current_buffer.insert_text("\n")

        stored: FileHistory | InMemoryHistory = InMemoryHistory()
        if history is not None:
            try:
                history.parent.mkdir(parents=True, exist_ok=True)
                stored = FileHistory(str(history))
            except OSError:
                pass  # a read-only HOME: history for this session only
        self.session: Any = PromptSession(history=stored, key_bindings=keys, **session_io)
        self.on_ready = on_ready  # called as each prompt starts (tests type then)

    def _line(self, prompt: str) -> str | None:
        try:
            return str(self.session.prompt(prompt, pre_run=self.on_ready))
        except (EOFError, KeyboardInterrupt):
            return None

    def read(self) -> str | None:
        text = self._line(">>> ")
        if text is None or not text.lstrip().startswith(QUOTES):
            return text
        lines = [text.lstrip()[len(QUOTES) :]]
        while not lines[-1].rstrip().endswith(QUOTES):
            more = self._line("... ")
            if more is None:
                return None
            lines.append(more)
        lines[-1] = lines[-1].rstrip()[: -len(QUOTES)]
        return "\n".join(lines).strip("\n")


def with_commands(
    read: Callable[[], str | None], clear: Callable[[], None], say: Callable[[str], None]
) -> Callable[[], str | None]:
    """`read`, with /bye, /clear and /? handled here; other text goes to the agent."""

    def next_message() -> str | None:
        while True:
            text = read()
            if text is None:
                return None
            command = text.strip()
            if command in LEAVE:
                return None
            if command == "/clear":
                clear()
                say("Cleared the conversation; the next message starts a new one.")
            elif command in ("/?", "/help"):
                say(HELP)
            elif command.startswith("/") and " " not in command and "\n" not in command:
                say(f"Unknown command {command}. {HELP}")
            else:
                return text

    return next_message
