"""The host RAM a level-1 sleeper holds: power-of-two rounded pinned backups (PyTorch's
CachingHostAllocator under vLLM's CuMemAllocator), then the measured figure."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_manager.plan.host_ram import (
    GIB,
    MIB,
    estimate_backup_bytes,
    measured_host_ram,
    pinned_backup_bytes,
    pow2_ceil,
    tensor_blocks,
)
from tests.conftest import CliResult
from tests.test_planner import cached_defaults  # noqa: F401  (fixture)

Cli = Callable[..., CliResult]


def test_each_block_is_rounded_to_granules_then_to_a_power_of_two() -> None:
    assert pow2_ceil(1) == 1 and pow2_ceil(3 * MIB) == 4 * MIB and pow2_ceil(4 * MIB) == 4 * MIB
    # 1 byte maps a 2 MiB granule; 5 MiB maps 6 MiB, pinned as 8 MiB; 130 MiB -> 256 MiB.
    assert pinned_backup_bytes([1, 5 * MIB, 130 * MIB]) == 2 * MIB + 8 * MIB + 256 * MIB


def test_a_model_of_just_over_power_of_two_blocks_needs_almost_twice_its_weights() -> None:
    blocks = [129 * MIB] * 40  # 5.04 GiB of weights
    assert estimate_backup_bytes(sum(blocks), blocks) == 40 * 256 * MIB  # 10 GiB


def test_without_the_tensors_the_estimate_is_the_upper_bound_twice_the_weights() -> None:
    assert estimate_backup_bytes(5 * GIB, None) == 10 * GIB


def test_the_measured_figure_is_the_larger_of_vllms_line_and_the_rss_growth() -> None:
    assert measured_host_ram(5 * GIB, 9 * GIB) == 9 * GIB
    assert measured_host_ram(5 * GIB, None) == 5 * GIB
    assert measured_host_ram(None, -1) is None


def _safetensors(path: Path, sizes: dict[str, int]) -> None:
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, size in sizes.items():
        header[name] = {"dtype": "U8", "shape": [size], "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def test_tensor_blocks_come_from_the_safetensors_headers(tmp_path: Path) -> None:
    _safetensors(tmp_path / "model-1.safetensors", {"a": 10, "b": 3000})
    _safetensors(tmp_path / "model-2.safetensors", {"c": 7})
    assert sorted(tensor_blocks(tmp_path) or []) == [7, 10, 3000]
    assert tensor_blocks(tmp_path / "none") is None
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 8)
    assert tensor_blocks(tmp_path) is None


# --- shown by list, status and plan, asleep or awake -----------------------------------------


def _slept_at_level_1(workspace: Path, monkeypatch: pytest.MonkeyPatch, asleep: bool) -> None:
    from agent_manager.observe import sleep_records
    from agent_manager.spec.loader import load_agent
    from agent_manager.spec.workspace import resolve_workspace
    from tests.fakes.docker import install_docker
    from tests.test_gpu_stats import _container

    path = workspace / "agents" / "po.yaml"
    path.write_text(path.read_text() + "switch: sleep\n")
    ws = resolve_workspace(workspace)
    record = sleep_records.new_record("po", "c1", load_agent(ws, "po").spec_hash(), 1)
    record.asleep = asleep
    record.host_ram_bytes, record.host_ram_measured = int(9.8 * GIB), True
    sleep_records.write_record(ws, record)
    install_docker(monkeypatch).containers["c1"] = _container("c1", "po")


def test_list_shows_the_host_ram_an_awake_agent_kept_from_its_level_1_sleep(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    _slept_at_level_1(workspace, monkeypatch, asleep=False)
    result = cli("--home", str(workspace), "list", "--json")
    rows = {row["name"]: row for row in json.loads(result.stdout)["agents"]}
    assert rows["po"]["host_ram"] == "9.8 GiB in host RAM"
    assert rows["architect"]["host_ram"] is None
    text = cli("--home", str(workspace), "list").stdout
    assert "po: switch sleep (level 1); awake, holds 9.8 GiB in host RAM since its level-1" in (
        " ".join(text.split())
    )


def test_status_shows_the_host_ram_of_a_running_agent_that_slept(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    _slept_at_level_1(workspace, monkeypatch, asleep=False)
    result = cli("--home", str(workspace), "status", "--json")
    rows = {row["agent"]: row for row in json.loads(result.stdout)["agents"]}
    assert rows["po"]["host_ram"] == "9.8 GiB in host RAM"


def test_plan_shows_the_measured_figure_or_the_rounded_estimate(
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Cli,
    cached_defaults: None,  # noqa: F811
) -> None:
    _slept_at_level_1(workspace, monkeypatch, asleep=True)
    result = cli("--home", str(workspace), "plan", "po", "--gpu-memory", "16", "--json")
    plan = json.loads(result.stdout)["agents"][0]
    assert (plan["sleep_host_ram_bytes"], plan["sleep_host_ram_source"]) == (
        int(9.8 * GIB),
        "measured",
    )
    (workspace / ".agent-manager" / "sleep" / "po.json").unlink()
    result = cli("--home", str(workspace), "plan", "po", "--gpu-memory", "16")
    said = " ".join(result.stdout.split())
    assert "level-1 sleep holds" in said and "(estimate: its weights in power-of-two" in said
