"""Sleeping agents in the plan (pure arithmetic, no I/O).

A vLLM engine asleep still holds VRAM: its CUDA context, CUDA graphs (not offloaded by
default) and whatever vLLM allocated outside its sleep-mode allocator. vLLM logs the figure
when it falls asleep ("Sleep mode freed X GiB memory, Y GiB memory is still in use"); until an
agent has been seen asleep, `observe.sleepers.DEFAULT_RESIDUAL_BYTES` stands in for it.

The agent that starts next must still pass vLLM's own check, free ≥ ceil(fraction × total),
with every sleeper's remainder on the card: `beside_sleepers` rewrites the GPU the planner
sees so that its usual verdict (and its "short by N GiB" numbers) counts them.

A level-1 sleeper keeps its weights in host RAM, in power-of-two rounded pinned blocks
(plan/host_ram.py): `choose_sleep_level` falls back to level 2 (weights reloaded from disk on
wake) when the host lacks the room for that figure, and says so with numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent_manager.plan.models import GpuTarget, Holder
from agent_manager.units import GIB, MIB

# A measured residual is never taken below this: NVML's per-process figure (or vLLM's
# whole-GPU one minus the others) of a sleeping engine still holds its CUDA context.
MIN_RESIDUAL_BYTES = 256 * MIB
# Host RAM left to the OS, Docker and the engines' own processes when weights move there.
HOST_RAM_MARGIN_BYTES = 2 * GIB


def _gib(value: int) -> str:
    return f"{value / GIB:.1f} GiB"


def measured_residual(still_in_use: int, other_sleepers: int) -> int:
    """This engine's share of vLLM's Y (whole-GPU use right after it slept)."""
    return max(MIN_RESIDUAL_BYTES, still_in_use - other_sleepers)


def beside_sleepers(target: GpuTarget, sleepers: Mapping[str, int]) -> GpuTarget:
    """The GPU as the next agent will find it when `sleepers` (agent → VRAM kept) stay.

    An awake agent about to sleep frees what it holds beyond its remainder; a sleeper is no
    longer "ours, stopped first", so its remainder stays used.
    """
    if not sleepers:
        return target
    free = target.free_bytes
    holders: list[Holder] = []
    for holder in target.holders:
        if holder.agent is None or holder.agent not in sleepers:
            holders.append(holder)
            continue
        used = holder.used_bytes or 0
        kept = min(used, sleepers[holder.agent]) if used else sleepers[holder.agent]
        if free is not None:
            free = min(target.total_bytes, free + used - kept)
        holders.append(Holder(label=f"{holder.label} (asleep)", pid=holder.pid,
                              used_bytes=kept, agent=None))  # fmt: skip
    listed = ", ".join(f"{name} {_gib(kept)}" for name, kept in sorted(sleepers.items()))
    note = f"kept by sleeping agents: {listed}"
    return target.model_copy(
        update={"free_bytes": free, "holders": holders, "notes": [*target.notes, note]}
    )


def choose_sleep_level(
    agent: str, wanted: int, host_ram_bytes: int | None, available_bytes: int | None
) -> tuple[int, str | None]:
    """The level to sleep at, and a line saying why when it is not the one asked for.

    `host_ram_bytes` is what a level-1 sleep holds in host RAM (plan/host_ram.py: measured
    once seen, else the power-of-two rounded estimate), not the bare weights.
    """
    if wanted != 1 or host_ram_bytes is None or available_bytes is None:
        return wanted, None
    room = available_bytes - HOST_RAM_MARGIN_BYTES
    if host_ram_bytes <= room:
        return 1, None
    return 2, (
        f"{agent}: sleep level 1 would hold {_gib(host_ram_bytes)} in host RAM (its weights in "
        f"pinned, power-of-two rounded blocks), but only {_gib(max(0, available_bytes))} is "
        f"available ({_gib(HOST_RAM_MARGIN_BYTES)} kept for the system), short by "
        f"{_gib(host_ram_bytes - room)}; sleeping at level 2 instead (its weights are reloaded "
        "from disk on wake)."
    )
