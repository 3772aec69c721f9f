"""What `download-models` shows: progress per file and in total, the summary, the failures."""

from __future__ import annotations

import os
from types import TracebackType

from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from agent_manager import ui
from agent_manager.adapters.hf_cache import hf_home
from agent_manager.models.downloads import AgentDownload, DownloadReport, format_bytes

LONG_FILE_BYTES = 10_000_000  # files worth a start line and a speed in plain output


def warn_about_hub_cache() -> None:
    moved = os.environ.get("HF_HUB_CACHE")
    if moved and os.path.realpath(moved) != os.path.realpath(hf_home() / "hub"):
        ui.warn(
            f"HF_HUB_CACHE={moved} is ignored: the containers mount HF_HOME ({hf_home()}), "
            f"so models go to {hf_home() / 'hub'}."
        )


# -- progress --------------------------------------------------------------------------------


class _PlainProgress:
    """One line per file on stderr, for logs and pipes."""

    def __enter__(self) -> _PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def begin(self, total_bytes: int) -> None:
        if total_bytes:
            ui.info(f"Downloading {format_bytes(total_bytes)}.")

    def start_file(self, agent: str, path: str, size: int, have: int) -> None:
        # Announce only what takes a while; small files get their one "done" line.
        if size - have >= LONG_FILE_BYTES:
            resume = f", resuming at {format_bytes(have)}" if have else ""
            ui.info(f"{agent}: {path} ({format_bytes(size)}{resume}) ...")

    def advance(self, nbytes: int) -> None:
        return None

    def finish_file(self, agent: str, path: str, fetched: int, seconds: float) -> None:
        ui.info(f"{agent}: {path} {_done(fetched, seconds)}")

    def agent_done(self, result: AgentDownload) -> None:
        return None

    def end(self) -> None:
        return None


class _RichProgress:
    """A bar per file and one for the total, with bytes/s (only on a terminal)."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=ui.err(),
        )
        self._total: TaskID | None = None
        self._file: TaskID | None = None

    def __enter__(self) -> _RichProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def begin(self, total_bytes: int) -> None:
        if total_bytes:
            self._total = self._progress.add_task("total", total=total_bytes)

    def start_file(self, agent: str, path: str, size: int, have: int) -> None:
        self._file = self._progress.add_task(f"{agent}: {path}", total=size, completed=have)

    def advance(self, nbytes: int) -> None:
        if self._file is not None:
            self._progress.advance(self._file, nbytes)
        if self._total is not None:
            self._progress.advance(self._total, nbytes)

    def finish_file(self, agent: str, path: str, fetched: int, seconds: float) -> None:
        if self._file is not None:
            self._progress.remove_task(self._file)
            self._file = None
        self._progress.console.print(
            f"[green]✓[/green] {escape(agent)}: {escape(path)} {_done(fetched, seconds)}"
        )

    def agent_done(self, result: AgentDownload) -> None:
        if self._file is not None:
            # The file that was in flight when the agent failed.
            self._progress.remove_task(self._file)
            self._file = None
        if result.status == "failed" and self._total is not None:
            # What this agent will not fetch leaves the total, so the bar can reach the end.
            task = next(t for t in self._progress.tasks if t.id == self._total)
            unfetched = max(result.remaining_bytes - result.fetched_bytes, 0)
            self._progress.update(self._total, total=(task.total or 0) - unfetched)

    def end(self) -> None:
        if self._total is not None:
            self._progress.remove_task(self._total)


def progress_for(quiet: bool) -> _PlainProgress | _RichProgress:
    if not quiet and ui.stderr_is_terminal():
        return _RichProgress()
    if quiet:
        return _QuietProgress()
    return _PlainProgress()


class _QuietProgress(_PlainProgress):
    def begin(self, total_bytes: int) -> None:
        return None

    def start_file(self, agent: str, path: str, size: int, have: int) -> None:
        return None

    def finish_file(self, agent: str, path: str, fetched: int, seconds: float) -> None:
        return None


# -- rendering -------------------------------------------------------------------------------


def render_dry_run(report: DownloadReport) -> None:
    console = ui.out()
    for result in report.agents:
        if result.status == "failed":
            continue
        at = f"@{result.revision}" if result.revision else ""
        commit = f" (commit {result.commit[:12]})" if result.commit else ""
        console.print(f"{result.agent}: {result.model}{at}{commit}", markup=False)
        table = Table(show_edge=False, pad_edge=False, box=None)
        table.add_column("file", no_wrap=True, overflow="ignore")  # a path: kept whole
        table.add_column("size", justify="right")
        table.add_column("state")
        for file in result.files:
            if file.cached:
                state = "cached"
            elif file.remaining == 0:
                state = "cached (other revision)"
            elif file.have_bytes:
                state = f"partial ({format_bytes(file.have_bytes)} here)"
            else:
                state = "to download"
            table.add_row(file.path, format_bytes(file.size), state)
        if result.files:
            console.print(table)
        console.print(
            f"  {len(result.files)} files, {format_bytes(result.total_bytes)}; "
            f"to download: {format_bytes(result.remaining_bytes)}",
            markup=False,
        )
        for warning in result.warnings:
            ui.warn(f"{result.agent}: {warning}")
    needed = sum(r.remaining_bytes for r in report.agents)
    total = format_bytes(needed)
    unknown = [r.agent for r in report.agents if r.status == "failed"]
    if unknown:
        # The hub gave no file list for them: their size is not known, and not 0 B.
        names = ", ".join(unknown)
        total = (
            f"unknown (no sizes for {names})"
            if len(unknown) == len(report.agents)
            else f"{total} plus what {names} need{'s' if len(unknown) == 1 else ''} (unknown)"
        )
    console.print(
        f"Total to download: {total} into {report.cache} (dry run: nothing fetched)",
        markup=False,
        soft_wrap=True,
    )


def render_report(report: DownloadReport) -> None:
    from agent_manager.cli.fitted_table import Column, fitted_table

    console = ui.out()
    columns = [
        Column("agent", keep=9),
        Column("model", keep=8, whole=True),
        Column("result", keep=9),
        Column("files", keep=2),
        Column("size", keep=5),
        Column("fetched", keep=4),
        Column("time", keep=3),
    ]
    rows = []
    for result in report.agents:
        at = f"@{result.revision}" if result.revision else ""
        rows.append(
            [
                result.agent,
                result.model + at,
                _result_word(result),
                str(len(result.files)) if result.files else "-",
                format_bytes(result.total_bytes) if result.files else "-",
                format_bytes(result.fetched_bytes),
                f"{result.seconds:.1f} s",
            ]
        )
    table = fitted_table(columns, rows)
    console.print(table)
    for result in report.agents:
        for warning in result.warnings:
            ui.warn(f"{result.agent}: {warning}")
    fetched_files = sum(r.fetched_files for r in report.agents)
    if report.fetched_bytes == 0:
        if not report.failed:
            ui.success(f"Nothing to download: every model is already complete in {report.cache}.")
        return
    speed = format_bytes(_speed(report.fetched_bytes, report.seconds))
    summary = (
        f"Fetched {format_bytes(report.fetched_bytes)} ({fetched_files} files) in "
        f"{_duration(report.seconds)}, {speed}/s, into {report.cache}."
    )
    if report.failed:
        ui.info(summary)
    else:
        ui.success(summary)
        ui.hint("Launch now starts these agents with HF_HUB_OFFLINE=1 (no network).")


def render_failures(report: DownloadReport) -> None:
    for result in report.failed:
        ui.error(result.error or result.agent, result.hint)
    if report.failed and len(report.agents) > 1:
        done = len(report.agents) - len(report.failed)
        ui.info(f"{len(report.failed)} of {len(report.agents)} agents failed; {done} ok.")


def _result_word(result: AgentDownload) -> str:
    return {
        "complete": "already complete",
        "downloaded": "downloaded",
        "failed": "FAILED",
        "planned": "planned",
    }[result.status]


def _speed(nbytes: int, seconds: float) -> float:
    return nbytes / seconds if seconds > 0 else 0.0


def _done(fetched: int, seconds: float) -> str:
    if fetched == 0:
        return "already in the cache (linked)"
    return f"done ({_rate(fetched, seconds)})"


def _rate(nbytes: int, seconds: float) -> str:
    if nbytes < LONG_FILE_BYTES:
        return format_bytes(nbytes)
    return f"{format_bytes(nbytes)} in {seconds:.1f} s, {format_bytes(_speed(nbytes, seconds))}/s"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}m{secs:04.1f}s" if minutes else f"{secs:.1f} s"
