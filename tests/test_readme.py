"""The README is the user's manual: its command table must say what `--help` says."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_command_table_equals_help(cli):
    help_text = cli("--help").stdout
    commands = help_text.split("Commands:", 1)[1]
    from_help = [
        (match.group(1), match.group(2).strip())
        for match in re.finditer(r"^\s{2}(\S+)\s{2,}(.+)$", commands, flags=re.M)
    ]
    table = README.read_text().split("<!-- commands:", 1)[1].split("<!-- /commands -->", 1)[0]
    from_readme = re.findall(r"^\| `agent-manager (\S+)` \| (.+) \|$", table, flags=re.M)
    assert from_readme == from_help, "update the command table in README.md"


def test_the_readme_opens_with_the_install_and_test_commands():
    first_block = README.read_text().split("```bash", 1)[1].split("```", 1)[0]
    assert "./scripts/install.sh launch po" in first_block
    assert "./scripts/test.sh" in first_block
    assert "scripts/test.sh" in (README.parent / ".ci" / "run").read_text()


# --- every command line shown in README.md and docs/ parses, with options that exist --------

DOCS = [README, *sorted((README.parent / "docs").glob("*.md"))]


def documented_command_lines() -> list[tuple[str, str]]:
    """(where, command line) for each `agent-manager ...` in a code block or an inline span."""
    found: list[tuple[str, str]] = []
    for path in DOCS:
        in_code = False
        # A shell line continued with a backslash is one command.
        text = re.sub(r"\\\n\s*", " ", path.read_text())
        for number, line in enumerate(text.splitlines(), 1):
            if line.startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                shown = re.match(r"^\s*(?:\$\s+)?(agent-manager(?: [^#\n]*)?)$", line)
                spans = [shown.group(1)] if shown else []
            else:
                spans = re.findall(r"`(agent-manager(?: [^`]*)?)`", line)
            for span in spans:
                # The command only: not what a shell pipes it into, and no "..." placeholder.
                command = re.split(r" \| | > | && | ; ", span)[0].strip()
                found.append((f"{path.name}:{number}", command))
    return found


def _parse_only(argv: list[str]) -> None:
    """Parse like the CLI, callbacks left out (`--install-completion` must not install)."""
    from typer._click import Context
    from typer._click.exceptions import UsageError

    from agent_manager.cli.app import command
    from agent_manager.cli.shape import hoist_global_options, nearest_command

    group = command()
    args = hoist_global_options(argv)
    current = group
    ctx = Context(group, info_name="agent-manager", resilient_parsing=True)
    while True:
        _, rest, _ = current.make_parser(ctx).parse_args(args=list(args))
        commands = getattr(current, "commands", None)
        if commands is None:
            arguments = [p for p in current.params if p.param_type_name == "argument"]
            room = sum(p.nargs for p in arguments if p.nargs > 0)
            if not any(p.nargs < 0 for p in arguments) and len(rest) > room:
                raise UsageError(f"extra arguments {rest[room:]}", ctx)
            return
        if not rest:
            return
        name, args = rest[0], rest[1:]
        if name not in commands:
            meant = nearest_command(name, commands)
            raise UsageError(f"no such command {name!r} (nearest: {meant})", ctx)
        current = commands[name]
        ctx = Context(current, info_name=name, parent=ctx, resilient_parsing=True)
        # Options of the group come before the command; the command's own after it.
        parser = current.make_parser(ctx)
        parser.allow_interspersed_args = True


PLACEHOLDERS = {"<agent>": "po", "<AGENT>": "po", "AGENT": "po", "<GiB>": "16", "DIR": "/tmp/x"}


def _as_typed(word: str) -> str:
    """A synopsis word as a user would type it: `[--json]` -> `--json`, `[AGENT...]` -> `po`,
    `10m|2h` -> `10m`, `-f/--follow` -> `--follow`."""
    word = word.strip("[]").removesuffix("...").removesuffix("…").strip("[]")
    if word in ("", "...", "…"):
        return ""
    if word.startswith("-") and "/" in word:
        word = word.split("/")[-1]
    if "|" in word and not word.startswith("<"):
        word = word.split("|")[0]
    return PLACEHOLDERS.get(word, word)


def _options_exist(words: list[str], line: str) -> None:
    """Every option the line shows (both spellings of `-f/--follow`) is one the CLI has."""
    from agent_manager.cli.app import command

    group = command()
    known = {"--help", "-h"} | {o for p in group.params for o in [*p.opts, *p.secondary_opts]}
    current = group
    for word in words:
        commands = getattr(current, "commands", {})
        if word in commands:
            current = commands[word]
            known |= {o for p in current.params for o in [*p.opts, *p.secondary_opts]}
    shown = {o for w in re.findall(r"(?<![\w-])(-{1,2}[a-z][\w-]*)", line) for o in w.split("/")}
    missing = sorted(o for o in shown if o not in known)
    if missing:
        raise AssertionError(f"no such option: {', '.join(missing)}")


def test_every_documented_command_line_parses():
    import shlex

    problems = []
    lines = documented_command_lines()
    assert len(lines) > 40, "the extraction found the documented commands"
    for where, line in lines:
        try:
            words = [_as_typed(w) for w in shlex.split(line)[1:]]
            words = [w for w in words if w]
            _parse_only(words)
            _options_exist(words, line)
        except Exception as error:  # noqa: BLE001 - every problem is listed at once
            format_message = getattr(error, "format_message", None)
            message = format_message() if callable(format_message) else str(error)
            problems.append(f"{where}: `{line}`: {message}")
    assert not problems, "\n".join(problems)


def test_each_synopsis_heading_names_every_option_of_its_command():
    """A `## agent-manager CMD [OPTIONS]` heading in docs/ is that command's reference."""
    from agent_manager.cli.app import command

    problems = []
    for path in DOCS:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            heading = re.match(r"^#+ `agent-manager ([a-z-]+(?: [a-z-]+)?)(.*)`", line)
            if not heading:
                continue
            current = command()
            for name in heading.group(1).split():
                current = getattr(current, "commands", {}).get(name, current)
            options = {p.opts[-1] for p in current.params if p.param_type_name == "option"}
            missing = sorted(o for o in options if o not in heading.group(2))
            if missing:
                problems.append(f"{path.name}:{number}: {line.strip()} lacks {', '.join(missing)}")
    assert not problems, "\n".join(problems)
