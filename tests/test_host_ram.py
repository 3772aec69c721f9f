"""The host RAM a level-1 sleeper holds: power-of-two rounded pinned backups (PyTorch's
CachingHostAllocator under vLLM's CuMemAllocator), then the measured figure."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from agent_manager.plan.host_ram import (
    GIB,
    MIB,
    estimate_backup_bytes,
    measured_host_ram,
    pinned_backup_bytes,
    pow2_ceil,
    tensor_blocks,
)


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
