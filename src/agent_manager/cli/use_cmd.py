"""`chat` and `bench`: talk to a running agent, and measure it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from agent_manager import ui
from agent_manager.cli.options import AgentArg, JsonOpt, workspace
from agent_manager.errors import UsageError

if TYPE_CHECKING:
    from agent_manager.cli.chat_input import ChatInput
    from agent_manager.client.bench import BenchReport

MaxTokensOpt = Annotated[
    int | None, typer.Option("--max-tokens", min=1, help="Longest answer, in tokens.")
]


def chat(
    agent: AgentArg,
    prompt: Annotated[
        str | None,
        typer.Argument(
            help="What to ask ('-' reads it from stdin). Without it: a conversation, "
            "Ctrl-D or Ctrl-C to leave."
        ),
    ] = None,
    system: Annotated[
        str | None, typer.Option("--system", "-s", help="System prompt for the conversation.")
    ] = None,
    max_tokens: MaxTokensOpt = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            "--temperature", "-t", min=0, max=2, help="Sampling temperature (default: the spec's)."
        ),
    ] = None,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Wait for the whole answer instead of streaming.")
    ] = False,
    no_start: Annotated[
        bool, typer.Option("--no-start", help="Fail instead of starting an agent that is down.")
    ] = False,
) -> None:
    """Chat with an agent, starting it if needed (streamed).

    Talks to the agent's OpenAI-compatible API; an agent that is down is started first
    (through `agent-manager serve` when a router runs, else as `launch` does).

    Answers stream to stdout as they are generated. At a terminal: line editing and history,
    Alt-Enter or triple quotes for several lines, /clear, /bye (docs/using-agents.md). The
    agent's API key is read from the variable its spec names in api_key_env.
    """
    from agent_manager.cli.agent_start import serving_endpoint
    from agent_manager.client.chat import ChatOptions, Conversation, Reply, chat_loop

    if prompt == "-" or (prompt is None and not _stdin_is_terminal()):
        prompt = sys.stdin.read()
        if not prompt.strip():
            raise UsageError("No prompt: stdin was empty.", hint="Pass the prompt as an argument.")
    endpoint = serving_endpoint(workspace(create=not no_start), agent, start=not no_start)
    options = ChatOptions(system, max_tokens, temperature, stream=not no_stream)
    conversation = Conversation(endpoint, options)

    def show_end(reply: Reply) -> None:
        _write("\n")
        if reply.interrupted:
            ui.warn("answer interrupted")
        elif reply.finish_reason == "length":
            ui.hint("(answer cut at the token limit; raise --max-tokens)")

    if prompt is not None:
        reply = conversation.ask(prompt, _write)
        show_end(reply)
        if reply.interrupted:
            raise typer.Exit(130)
        return
    from agent_manager.cli.chat_input import with_commands

    ui.hint(
        f"Chatting with {endpoint.agent} (model '{endpoint.model}' at {endpoint.url}/v1). "
        "/? for help; /bye, Ctrl-D or Ctrl-C to leave."
    )
    read = with_commands(_chat_input().read, conversation.clear, ui.hint)
    chat_loop(conversation, read, _write, show_end)


def bench(
    agent: AgentArg,
    requests: Annotated[int, typer.Option("--requests", "-n", min=1, help="Requests in all.")] = 20,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Requests in flight at once.")
    ] = 4,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="Tokens generated per request.")
    ] = 128,
    prompt_len: Annotated[
        int, typer.Option("--prompt-len", min=1, help="Prompt length per request, in words.")
    ] = 256,
    start: Annotated[
        bool, typer.Option("--start", help="Start the agent first when it is not running.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Measure TTFT, tokens/s and latency.

    Of a running agent: time to first token, tokens/s, requests/min, latency P50/P95.

    Sends streamed chat requests at a fixed concurrency and reads vLLM's /metrics before and
    after to report the server's own token counts. Exits 1 if any request failed.
    """
    from agent_manager.cli.agent_start import serving_endpoint
    from agent_manager.client.bench import BenchSettings, run_bench

    endpoint = serving_endpoint(workspace(create=start), agent, start=start)
    settings = BenchSettings(requests, concurrency, max_tokens, prompt_len)
    if ui.stderr_is_terminal() and not json_output:
        report = _with_progress(lambda on_done: run_bench(endpoint, settings, on_done), requests)
    else:
        report = run_bench(endpoint, settings)
    if json_output:
        ui.print_json(report)
    else:
        _render_bench(report)
    if report.failed:
        for error in report.errors:
            ui.warn(error)
        raise typer.Exit(1)


def _with_progress(run: Callable[[Callable[[int], None]], BenchReport], total: int) -> BenchReport:
    from rich.progress import Progress

    with Progress(console=ui.err(), transient=True) as progress:
        task = progress.add_task("benchmarking", total=total)
        return run(lambda done: progress.update(task, completed=done))


def _render_bench(report: BenchReport) -> None:
    console = ui.out()
    console.print(
        f"bench {report.agent}: model '{report.model}' at {report.url}/v1 — "
        f"{report.requests} requests, concurrency {report.concurrency}, "
        f"~{report.prompt_len}-word prompts, {report.max_tokens} tokens each",
        markup=False,
        soft_wrap=True,
    )
    table = ui.table()
    table.add_column("metric")
    for column in ("mean", "p50", "p95", "min", "max"):
        table.add_column(column, justify="right")
    rows = (
        ("time to first token (s)", report.ttft_s, "{:.3f}"),
        ("end-to-end latency (s)", report.latency_s, "{:.3f}"),
        ("output tokens/s per request", report.request_output_tokens_per_s, "{:.1f}"),
    )
    for label, dist, fmt in rows:
        if dist is None:
            table.add_row(label, "-", "-", "-", "-", "-")
            continue
        values = (dist.mean, dist.p50, dist.p95, dist.min, dist.max)
        table.add_row(label, *(fmt.format(v) for v in values))
    console.print(table)
    totals = ui.table(show_header=False)
    totals.add_column("what")
    totals.add_column("value", justify="right")
    totals.add_row(
        "completed", f"{report.completed}/{report.requests} in {report.duration_s:.2f} s"
    )
    totals.add_row("requests/min", f"{report.requests_per_min:.1f}")
    totals.add_row("output tokens/s (all requests)", f"{report.output_tokens_per_s:.1f}")
    totals.add_row("output tokens (client usage)", str(report.output_tokens))
    if report.prompt_tokens_mean is not None:
        totals.add_row("prompt tokens per request", f"{report.prompt_tokens_mean:.0f}")
    server = report.server
    if server is not None:
        for label, value in (
            ("server prompt tokens (/metrics)", server.prompt_tokens),
            ("server generation tokens (/metrics)", server.generation_tokens),
            ("server requests finished (/metrics)", server.requests),
        ):
            totals.add_row(label, "-" if value is None else str(value))
        if server.ttft_mean_s is not None:
            totals.add_row("server mean TTFT (s)", f"{server.ttft_mean_s:.3f}")
    else:
        totals.add_row("server counts", "unavailable (/metrics did not answer)")
    console.print(totals)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _chat_input() -> ChatInput:
    """The terminal reader (tests give it prompt_toolkit's pipe input instead)."""
    from agent_manager.cli.chat_input import ChatInput, history_path

    return ChatInput(history_path())


def _write(text: str) -> None:
    stream = ui.out().file
    stream.write(text)
    stream.flush()
