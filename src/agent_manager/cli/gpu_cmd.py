"""`gpu-stats` and `plan`: what is on the GPU now, and whether an agent will fit it.

Kept light on purpose: `gpu-stats --json` imports neither Rich tables nor the Docker SDK unless
it has something to attribute or draw.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from agent_manager import ui
from agent_manager.cli.options import AgentsArg, JsonOpt
from agent_manager.errors import UsageError
from agent_manager.units import GIB

if TYPE_CHECKING:
    from rich.console import RenderableType

    from agent_manager.observe.gpu import GpuSnapshot
    from agent_manager.plan.models import PlanReport


def gpu_stats(
    json_output: JsonOpt = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.2, help="Seconds between refreshes with --watch.")
    ] = 2.0,
) -> None:
    """Show GPU memory, load and which agent holds VRAM.

    Per GPU: memory, utilisation, temperature, power, clocks, fan, driver and CUDA version.
    Per process: pid, memory and the container and agent it belongs to. With --watch and
    --json, one JSON object per line at every refresh.
    """
    from agent_manager.observe.gpu import take_snapshot

    if not watch:
        snapshot = take_snapshot()
        if json_output:
            ui.print_json(snapshot)
        else:
            ui.out().print(_stats_view(snapshot))
            _print_sleepers()
            for note in snapshot.notes:
                ui.hint(note)
        return
    try:
        if json_output:
            while True:
                print(take_snapshot().model_dump_json(), flush=True)
                time.sleep(interval)
        elif ui.out().is_terminal:
            from rich.live import Live

            with Live(_stats_view(take_snapshot()), console=ui.out(), auto_refresh=False) as live:
                while True:
                    time.sleep(interval)
                    live.update(_stats_view(take_snapshot()), refresh=True)
        else:
            while True:  # piped: one table after another, no cursor tricks
                ui.out().print(_stats_view(take_snapshot()))
                time.sleep(interval)
    except KeyboardInterrupt:
        return


def _print_sleepers() -> None:
    """`po is asleep (level 1, 5.2 GiB in host RAM).`: Docker is asked only if one may sleep."""
    from agent_manager.cli.options import workspace
    from agent_manager.observe.sleepers import asleep_labels

    for agent, label in asleep_labels(workspace()).items():
        ui.out().print(f"{agent} is {label}.", markup=False)


def _stats_view(snapshot: GpuSnapshot) -> RenderableType:
    from rich.console import Group

    from agent_manager.cli.fitted_table import Column, fitted_table
    from agent_manager.observe.gpu import gib

    gpu_columns = (
        Column("gpu", keep=9),
        Column("name", keep=8, whole=True),
        Column("memory used / total", keep=9),
        Column("free", keep=7),
        Column("util", keep=6),
        Column("temp", keep=4),
        Column("power", keep=3),
        Column("clocks", keep=1),
        Column("fan", keep=2),
    )
    gpu_rows = []
    for gpu in snapshot.gpus:
        power = "-"
        if gpu.power_draw_w is not None:
            limit = f" / {gpu.power_limit_w:.0f}" if gpu.power_limit_w is not None else ""
            power = f"{gpu.power_draw_w:.0f}{limit} W"
        gpu_rows.append(
            (
                str(gpu.index),
                gpu.name,
                f"{gib(gpu.memory_used_bytes)} / {gib(gpu.memory_total_bytes)}",
                gib(gpu.memory_free_bytes),
                _unit(gpu.utilization_percent, "%"),
                _unit(gpu.temperature_c, "°C"),
                power,
                f"{_unit(gpu.sm_clock_mhz, '')} / {_unit(gpu.memory_clock_mhz, '')} MHz",
                _unit(gpu.fan_percent, "%"),
            )
        )
    gpus = fitted_table(gpu_columns, gpu_rows)
    first = snapshot.gpus[0] if snapshot.gpus else None
    versions = (
        f"Driver {first.driver_version or '-'}, CUDA {first.cuda_driver_version or '-'}"
        if first
        else ""
    )
    parts: list[RenderableType] = [versions, gpus, ""]
    if snapshot.processes:
        proc_columns = (
            Column("gpu", keep=6),
            Column("pid", keep=9),
            Column("memory", keep=9),
            Column("agent", keep=9, whole=True),
            Column("container", keep=5, whole=True),
        )
        proc_rows = [
            (
                str(process.gpu_index),
                str(process.pid),
                gib(process.used_bytes),
                process.agent or "-",
                process.container_name or process.container_id or "-",
            )
            for process in snapshot.processes
        ]
        procs = fitted_table(proc_columns, proc_rows)
        parts.append(procs)
    else:
        parts.append("No process is using a GPU.")
    return Group(*parts)


def _unit(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:g}{unit}"


def plan(
    agents: AgentsArg = None,
    gpu_memory: Annotated[
        float | None,
        typer.Option(
            "--gpu-memory",
            min=1,
            help="Plan for a GPU with this many GiB instead of the real one (e.g. 16).",
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Check whether agents fit the GPU, with the arithmetic.

    Per agent: weights, KV cache, allowances, the budget vLLM requests, the verdict, the headroom,
    the largest context that fits, and fixes when it does not fit. Uses the real GPU through NVML,
    or --gpu-memory to plan on paper; agents with engine: cpu are planned against host RAM.
    Exit code 1 when an agent does not fit. The arithmetic: docs/planner.md.
    """
    from agent_manager.cli.options import workspace
    from agent_manager.errors import GpuUnavailableError
    from agent_manager.plan.planner import gpu_target_from_nvml, gpu_target_on_paper, plan_agents
    from agent_manager.spec.engine_choice import gpu_cluster, machine_engines
    from agent_manager.spec.loader import load_agents

    ws = workspace()
    # --gpu-memory asks about a card: `engine: auto` agents are planned on it. Without it,
    # they are planned where they would run here (the CPU on a machine without a GPU runtime).
    loaded = load_agents(ws, agents or None, machine=gpu_cluster if gpu_memory else machine_engines)
    target = None
    sleepers: dict[str, int] = {}
    if gpu_memory is not None:
        if not gpu_memory < 100_000:  # also catches inf and nan, which `min=1` lets through
            raise UsageError(
                f"--gpu-memory {gpu_memory}: give the card's memory in GiB, e.g. 16, 24 or 80.",
                hint="The largest single GPU has a few hundred GiB; values are in GiB, not bytes.",
            )
        target = gpu_target_on_paper(gpu_memory)
    elif any(agent.spec.engine == "cuda" for agent in loaded):
        try:
            target = gpu_target_from_nvml()
        except GpuUnavailableError as error:
            raise GpuUnavailableError(
                f"{error.message} Without a GPU, plan needs the card's memory.",
                hint="Plan on paper with --gpu-memory <GiB>, e.g. "
                "`agent-manager plan --gpu-memory 16`.",
            ) from None
        from agent_manager.observe.sleepers import sleeper_residuals

        sleepers = sleeper_residuals(ws)  # sleep agents stay on the card beside the next one
    report = plan_agents(loaded, target, sleepers=sleepers)
    from agent_manager.plan.sleep_host_ram import add_host_ram

    add_host_ram(ws, loaded, report)
    if json_output:
        ui.print_json(report)
    else:
        _render_plan(report)
        if any(p.verdict == "unknown" for p in report.agents):
            ui.hint(
                "`agent-manager download-models` puts config.json and the weights in the local "
                "cache; `plan` then works offline."
            )
    if any(p.verdict == "does not fit" for p in report.agents):
        raise typer.Exit(1)


def _render_plan(report: PlanReport) -> None:

    from agent_manager.cli.fitted_table import Column, fitted_table
    from agent_manager.observe.gpu import gib

    gpu, host = report.gpu, report.host
    console = ui.out()
    if gpu is not None and any(p.engine == "cuda" for p in report.agents):
        free = f", {gib(gpu.free_bytes, 2)} free" if gpu.free_bytes is not None else ""
        reclaimable = gpu.free_after_stopping_agents()
        if reclaimable is not None and reclaimable != gpu.free_bytes:
            free += f" ({gib(reclaimable, 2)} once our running agents are stopped)"
        total = "" if gpu.total_exact else " (approximate)"
        console.print(
            f"GPU: {gpu.name}, {gib(gpu.total_bytes, 2)} total{total}{free}", markup=False
        )
    if host is not None:
        console.print(
            f"CPU plan: {host.name}, {gib(host.total_bytes, 2)} total, "
            f"{gib(host.available_bytes, 2)} available",
            markup=False,
        )
    columns = (
        Column("agent", keep=9, whole=True),
        Column("weights", keep=7),
        Column("context", keep=5),
        Column("KV cache", keep=6),
        Column("other", keep=2),
        Column("needed", keep=8),
        Column("budget", keep=7),
        Column("headroom", keep=7),
        Column("max ctx", keep=4),
        Column("verdict", keep=9),
    )
    rows = []
    for p in report.agents:
        weights = gib(p.weights_bytes, 2) + ("*" if p.weights_estimated else "")
        other = sum(a.bytes for a in p.allowances) if p.allowances else None
        headroom = "-" if p.headroom_bytes is None else f"{p.headroom_bytes / GIB:+.2f} GiB"
        rows.append(
            (
                p.agent,
                weights,
                "-" if p.context is None else str(p.context),
                gib(p.kv_cache_bytes, 2),
                gib(other, 2),
                gib(p.needed_bytes, 2),
                gib(p.budget_bytes, 2),
                headroom,
                "-" if p.largest_context is None else str(p.largest_context),
                p.verdict,
            )
        )
    table = fitted_table(columns, rows)
    console.print(table)
    for p in report.agents:
        engine = " (CPU plan, host RAM)" if p.engine == "cpu" else ""
        console.print(f"\n{p.agent}: {p.model} — {p.verdict}{engine}", markup=False)
        weights = (
            f"; weights {gib(p.weights_bytes, 2)} ({p.weights_source})"
            if p.weights_bytes is not None
            else ""
        )
        console.print(
            f"  budget {p.budget_source} = {gib(p.budget_bytes, 2)}{weights}", markup=False
        )
        if p.sleep_host_ram_bytes is not None:
            how = (
                "measured"
                if p.sleep_host_ram_source == "measured"
                else "estimate: its weights in power-of-two pinned blocks"
            )
            console.print(
                f"  level-1 sleep holds {gib(p.sleep_host_ram_bytes, 1)} of host RAM, also "
                f"after a wake ({how})",
                markup=False,
            )
        if p.kv_bytes_per_token and p.context:
            console.print(
                f"  KV cache {p.kv_bytes_per_token:,} B/token ({p.kv_cache_dtype}) x "
                f"{p.context:,} tokens [{p.context_source}] = {gib(p.kv_cache_bytes, 2)}",
                markup=False,
            )
        if p.allowances:
            console.print(
                "  allowances: " + ", ".join(f"{a.name} {gib(a.bytes, 2)}" for a in p.allowances),
                markup=False,
            )
        if p.largest_context_fp8:
            console.print(
                f"  largest context: {p.largest_context} tokens, {p.largest_context_fp8} with "
                "kv_cache_dtype fp8",
                markup=False,
            )
        for reason in p.reasons:
            console.print(f"  does not fit: {reason}", markup=False)
        for fix in p.fixes:
            console.print(f"  fix: {fix}", markup=False)
        for unknown in p.unknowns:
            console.print(f"  unknown: {unknown}", markup=False)
        for note in p.notes:
            console.print(f"  note: {note}", markup=False)
    for note in [*(gpu.notes if gpu else []), *(host.notes if host else [])]:
        ui.hint(note)
    if any(p.weights_estimated for p in report.agents):
        ui.hint("* weights estimated from config.json (no file sizes in the cache or from the hub)")
