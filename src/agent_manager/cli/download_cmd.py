"""`download-models`: fetch each agent's model into the cache the containers mount.

Thin: the work is in `downloads.py`, what is shown in `download_view.py` (both imported when
the command runs, so other commands do not pay for them)."""

from __future__ import annotations

from typing import Annotated

import typer

from agent_manager import ui
from agent_manager.cli.options import AgentsArg, JsonOpt, workspace

DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="List the files, sizes and total; download nothing.")
]


def download_models(
    agents: AgentsArg = None,
    dry_run: DryRunOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Download models ahead of time, resumably.

    All agents by default, so launch never waits on the network.

    Fetches only what vLLM needs (safetensors weights, configs, tokenizer, chat template) for
    the revision each spec pins, into $HF_HOME/hub (the cache the containers mount).
    Interrupted downloads resume; a model already complete is not fetched again.
    """
    from agent_manager.cli import download_view as view
    from agent_manager.models.downloads import run_downloads
    from agent_manager.spec.loader import load_agents

    loaded = load_agents(workspace(), agents or None)
    view.warn_about_hub_cache()
    progress = view.progress_for(quiet=json_output or dry_run)
    try:
        with progress:
            report = run_downloads(loaded, dry_run=dry_run, progress=progress)
    except KeyboardInterrupt:
        ui.err().print("Interrupted.")
        ui.hint("Partial files are kept: run download-models again to resume where it stopped.")
        raise typer.Exit(130) from None
    if json_output:
        ui.print_json(report)
    elif dry_run:
        view.render_dry_run(report)
    else:
        view.render_report(report)
    view.render_failures(report)
    if report.failed:
        raise typer.Exit(1)
