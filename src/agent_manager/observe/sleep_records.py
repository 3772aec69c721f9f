"""What agent-manager knows about each sleep-mode agent: `.agent-manager/sleep/<agent>.json`.

Written when an agent falls asleep (level, the VRAM it keeps, the host RAM a level-1 sleep
holds, the probe a level-2 wake is checked with) and kept after it wakes: the next plan uses
the measured figures instead of the defaults, and the host RAM stays shown while the container
lives (PyTorch keeps the pinned blocks after a wake). A record counts only for the container
and spec it was measured with.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from agent_manager.errors import WORKSPACE_WARNINGS
from agent_manager.fsio import write_text_atomic
from agent_manager.spec.workspace import Workspace
from agent_manager.units import GIB

LOG = logging.getLogger(WORKSPACE_WARNINGS)


class SleepRecord(BaseModel):
    agent: str
    container_id: str
    spec_hash: str
    level: Literal[1, 2]  # vLLM's two sleep levels; anything else is a damaged record
    asleep: bool
    since: float  # epoch seconds of the last sleep
    freed_bytes: int | None = None  # vLLM's "Sleep mode freed X GiB"
    still_in_use_bytes: int | None = None  # its "Y GiB memory is still in use" (whole GPU)
    residual_bytes: int | None = None  # what this engine keeps on the GPU while asleep
    residual_source: str | None = None  # "nvml" (its own processes) or "vllm" (Y − others)
    weights_bytes: int | None = None  # "Model loading took X GiB"
    # Host RAM a level-1 sleep holds, asleep AND after a wake (PyTorch keeps the pinned
    # blocks cached): measured after the sleep, else the estimate (plan/host_ram.py).
    host_ram_bytes: int | None = None
    host_ram_measured: bool = False
    probe: str | None = None  # the greedy one-token probe taken before a level-2 sleep

    def host_ram_text(self) -> str | None:
        """`9.8 GiB in host RAM` (measured) or `~10.8 GiB in host RAM (estimate)`."""
        if self.level != 1 or not self.host_ram_bytes:
            return None
        amount = f"{self.host_ram_bytes / GIB:.1f} GiB in host RAM"
        return amount if self.host_ram_measured else f"~{amount} (estimate)"

    def label(self) -> str:
        """`asleep (level 1, 5.2 GiB in host RAM)`, as status and list show it."""
        if self.level == 1:
            return f"asleep (level 1, {self.host_ram_text() or 'weights in host RAM'})"
        return "asleep (level 2, weights reloaded on wake)"


def _path(ws: Workspace, agent: str) -> Path:
    return ws.root / ".agent-manager" / "sleep" / f"{agent}.json"


def read_record(ws: Workspace, agent: str) -> SleepRecord | None:
    path = _path(ws, agent)
    try:
        return SleepRecord.model_validate(json.loads(path.read_text("utf-8")))
    except OSError:
        return None  # none yet: the defaults apply
    except (ValueError, ValidationError):
        # Damaged or hand-edited: the defaults apply, nothing is lost; say so once per read.
        LOG.warning("Ignored the damaged sleep record %s (remove it; it is re-made).", path)
        return None


def write_record(ws: Workspace, record: SleepRecord) -> None:
    path = _path(ws, record.agent)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, record.model_dump_json(indent=2) + "\n")


def mark_awake(ws: Workspace, agent: str) -> None:
    record = read_record(ws, agent)
    if record is not None and record.asleep:
        write_record(ws, record.model_copy(update={"asleep": False}))


def asleep_record(ws: Workspace, agent: str, container_id: str) -> SleepRecord | None:
    """The record saying this very container sleeps now, if there is one."""
    record = read_record(ws, agent)
    if record is None or not record.asleep or record.container_id != container_id:
        return None
    return record


def new_record(agent: str, container_id: str, spec_hash: str, level: int) -> SleepRecord:
    return SleepRecord.model_validate(
        {
            "agent": agent,
            "container_id": container_id,
            "spec_hash": spec_hash,
            "level": level,
            "asleep": True,
            "since": time.time(),
        }
    )
