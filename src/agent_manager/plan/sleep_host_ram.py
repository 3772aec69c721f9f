"""The host RAM a level-1 sleep of each planned agent holds: measured once seen (the agent's
sleep record), else estimated (plan/host_ram.py). `plan` shows it beside the VRAM verdict."""

from __future__ import annotations

from pathlib import Path

from agent_manager.observe import sleep_records
from agent_manager.plan.host_ram import estimate_backup_bytes, tensor_blocks
from agent_manager.plan.models import PlanReport
from agent_manager.spec.agents import Agent
from agent_manager.spec.workspace import Workspace


def level1_host_ram(
    ws: Workspace, agent: Agent, weights_bytes: int | None
) -> tuple[int, str] | None:
    """(bytes, "measured" | "estimate") of host RAM a level-1 sleep of `agent` holds; None for
    agents that do not sleep at level 1 or whose weights are unknown."""
    spec = agent.spec
    if spec.switch != "sleep" or spec.sleep_level != 1 or spec.engine != "cuda":
        return None
    record = sleep_records.read_record(ws, agent.name)
    if record and record.spec_hash == agent.spec_hash() and record.host_ram_measured:
        return int(record.host_ram_bytes or 0), "measured"
    if weights_bytes is None:
        return None
    blocks = tensor_blocks(Path(spec.model)) if spec.local_model else None
    return estimate_backup_bytes(weights_bytes, blocks), "estimate"


def add_host_ram(ws: Workspace, agents: list[Agent], report: PlanReport) -> None:
    """Fill each plan's `sleep_host_ram_*` for the level-1 sleep agents."""
    by_name = {agent.name: agent for agent in agents}
    for plan in report.agents:
        agent = by_name.get(plan.agent)
        found = level1_host_ram(ws, agent, plan.weights_bytes) if agent else None
        if found is not None:
            plan.sleep_host_ram_bytes, plan.sleep_host_ram_source = found
