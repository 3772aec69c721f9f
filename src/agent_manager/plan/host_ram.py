"""The host RAM a level-1 sleeper holds: estimated before its first sleep, then measured.

vLLM 0.33's CuMemAllocator backs each weight allocation up into its own pinned host tensor
(`torch.empty(size, pin_memory=True)`, vllm/device_allocator/cumem.py). PyTorch's pinned
(CachingHostAllocator) rounds every block up to a power of two and keeps freed blocks cached;
vLLM 0.33 does not empty that cache after a wake (vLLM PRs #55206 and #57629, issue #16663).
So a level-1 sleeper can hold up to ~2x its weights in host RAM, and keeps holding it once
awake. The estimate is the sum of the power-of-two rounded blocks; after a sleep the figure is
measured (vLLM's "CuMemAllocator: sleep freed ... of which X GiB is backed up in CPU" line and
the growth of the container's RSS) and kept for the agent, asleep or awake.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path

GIB = 1024**3
MIB = 1024**2
# cuMemGetAllocationGranularity on NVIDIA GPUs: every CuMemAllocator mapping is a multiple.
CUMEM_GRANULARITY_BYTES = 2 * MIB
# A safetensors header is tiny; one larger than this is not a safetensors file.
MAX_HEADER_BYTES = 100 * MIB


def pow2_ceil(size: int) -> int:
    return 1 if size <= 1 else 1 << (size - 1).bit_length()


def pinned_backup_bytes(blocks: Iterable[int]) -> int:
    """Host RAM of the backups of `blocks` (allocation sizes): each mapped in CuMem granules,
    then rounded up to a power of two by PyTorch's pinned allocator."""
    total = 0
    for block in blocks:
        mapped = -(-block // CUMEM_GRANULARITY_BYTES) * CUMEM_GRANULARITY_BYTES
        total += pow2_ceil(mapped)
    return total


def estimate_backup_bytes(weights_bytes: int, blocks: list[int] | None) -> int:
    """The level-1 estimate: the rounded blocks when the checkpoint's tensors are known, else
    the upper bound 2x the weights (a power-of-two round-up never reaches 2x a block)."""
    if blocks:
        return pinned_backup_bytes(blocks)
    return 2 * weights_bytes


def measured_host_ram(backed_up_bytes: int | None, rss_growth_bytes: int | None) -> int | None:
    """What the sleep really took: the container's RSS growth counts the rounding and the
    allocator's cache; vLLM's "backed up in CPU" figure is the floor (the unrounded bytes)."""
    known = [v for v in (backed_up_bytes, rss_growth_bytes) if v is not None and v > 0]
    return max(known) if known else None


def tensor_blocks(snapshot: Path) -> list[int] | None:
    """The byte size of every tensor in the snapshot's *.safetensors (headers only); None when
    a file is missing or unreadable."""
    files = sorted(snapshot.glob("*.safetensors"))
    if not files:
        return None
    blocks: list[int] = []
    for path in files:
        try:
            with path.open("rb") as stream:
                (length,) = struct.unpack("<Q", stream.read(8))
                if length > MAX_HEADER_BYTES:
                    return None
                header = json.loads(stream.read(length))
        except (OSError, ValueError, struct.error):
            return None
        for name, entry in header.items():
            if name == "__metadata__" or not isinstance(entry, dict):
                continue
            start, end = entry.get("data_offsets", (0, 0))
            blocks.append(int(end) - int(start))
    return blocks
