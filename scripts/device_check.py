#!/usr/bin/env python3
"""The GPU figures a lent device machine can prove; run through scripts/device_check.sh.

Prints one line per figure and, where $OUT is set, writes $OUT/device_check.json. Without a GPU
(or with --dry) it stops after the steps that need none, says why, and exits 3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GIB = 1024**3
MIB = 1024**2
HELD_BYTES = 4 * GIB  # what the torch process allocates on top of its CUDA context
NO_GPU_EXIT = 3

# A fresh process: initialise CUDA (one tiny tensor), optionally hold `bytes` more, say
# "ready <pid>", then wait until stdin closes.
HOLDER = """
import sys, torch
torch.zeros(1, device="cuda")
held = int(sys.argv[1])
block = torch.empty(held, dtype=torch.uint8, device="cuda") if held else None
torch.cuda.synchronize()
print("ready", __import__("os").getpid(), flush=True)
sys.stdin.read()
"""


def say(text: str) -> None:
    print(f"device_check: {text}", flush=True)


def no_gpu(reason: str) -> None:
    say(
        f"no GPU here: {reason}. These checks need an NVIDIA GPU with its NVML library and "
        "PyTorch with CUDA (the lent device machine); nothing was measured."
    )
    sys.exit(NO_GPU_EXIT)


def gpu_stats_json() -> dict[str, Any]:
    """`agent-manager gpu-stats --json`, run as a user would, on the real NVML."""
    done = subprocess.run(
        [sys.executable, "-c", "from agent_manager.cli.app import main; main()"]
        + ["gpu-stats", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        said = " ".join((done.stdout + done.stderr).split())
        no_gpu(
            f"`agent-manager gpu-stats --json` exited {done.returncode}: {said[:300].rstrip('.')}"
        )
    return json.loads(done.stdout)


def nvml_used() -> tuple[int, int]:
    """(used, total) bytes of GPU 0 through the project's NVML adapter."""
    from agent_manager.adapters import nvml

    device = nvml.get_nvml().devices()[0]
    return device.memory_used_bytes, device.memory_total_bytes


def nvml_held_by(pid: int) -> int | None:
    from agent_manager.adapters import nvml

    for process in nvml.get_nvml().processes():
        if process.pid == pid:
            return process.used_bytes
    return None


def torch_mem_get_info() -> tuple[int, int]:
    code = "import torch; f, t = torch.cuda.mem_get_info(); print(f, t)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    free, total = (int(x) for x in out.stdout.split())
    return free, total


def start_holder(held: int) -> tuple[subprocess.Popen[str], int, float]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(held)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        proc.kill()
        raise SystemExit("device_check: the torch process did not start")
    return proc, int(line[1]), time.monotonic() - started


def settle(read: Any, seconds: float = 2.0) -> Any:
    """NVML's figures lag the driver a little: read until two reads agree."""
    last = read()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = read()
        if now == last:
            return now
        last = now
    return last


def measure() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    stats = gpu_stats_json()
    gpu = stats["gpus"][0]
    figures["gpu"] = gpu.get("name")
    figures["driver"] = gpu.get("driver_version")
    figures["gpu_stats_processes"] = len(stats.get("processes", []))
    say(f"gpu-stats --json: {gpu.get('name')}, driver {gpu.get('driver_version')}")

    base_used, nvml_total = settle(nvml_used)
    torch_free, torch_total = torch_mem_get_info()
    figures |= {"nvml_total_bytes": nvml_total, "torch_total_bytes": torch_total}
    figures["nvml_minus_torch_total_bytes"] = nvml_total - torch_total
    say(
        f"total: NVML {nvml_total / GIB:.2f} GiB, torch.cuda.mem_get_info "
        f"{torch_total / GIB:.2f} GiB (difference {(nvml_total - torch_total) / MIB:.0f} MiB); "
        f"used before anything: {base_used / MIB:.0f} MiB"
    )

    proc, pid, seconds = start_holder(0)
    context_used, _ = settle(nvml_used)
    context_pid = nvml_held_by(pid)
    proc.communicate("")
    figures["cuda_init_seconds"] = round(seconds, 2)
    figures["cuda_context_bytes_device"] = context_used - base_used
    figures["cuda_context_bytes_by_pid"] = context_pid
    say(
        f"CUDA context: device used +{(context_used - base_used) / MIB:.0f} MiB, NVML's figure "
        f"for pid {pid}: {'-' if context_pid is None else f'{context_pid / MIB:.0f} MiB'} "
        f"(start {seconds:.1f} s)"
    )

    base_used, _ = settle(nvml_used)
    proc, pid, _ = start_holder(HELD_BYTES)
    held_used, _ = settle(nvml_used)
    by_pid = nvml_held_by(pid)
    figures["held_request_bytes"] = HELD_BYTES
    figures["held_device_delta_bytes"] = held_used - base_used
    figures["held_by_pid_bytes"] = by_pid
    figures["attributed_by_pid"] = by_pid is not None
    attributed = (
        "nothing to its pid (another pid namespace?)"
        if by_pid is None
        else f"{by_pid / GIB:.2f} GiB to pid {pid}"
    )
    say(
        f"torch process holding {HELD_BYTES / GIB:.0f} GiB: device used "
        f"+{(held_used - base_used) / GIB:.2f} GiB; NVML attributes {attributed}"
    )
    figures |= time_free_wait(proc, pid, by_pid, held_used)
    return figures


def time_free_wait(
    proc: subprocess.Popen[str], pid: int, by_pid: int | None, used_before: int
) -> dict[str, Any]:
    """The switch's own wait (GpuWatch) from the holder's exit until NVML shows it gone."""
    from agent_manager.adapters import nvml
    from agent_manager.switch.vram import GpuWatch

    watch = GpuWatch(nvml.get_nvml(), {pid: by_pid} if by_pid is not None else {}, used_before)
    said: list[str] = []
    assert proc.stdin is not None
    proc.stdin.close()
    exited = time.monotonic()
    proc.wait(60)
    process_gone = time.monotonic() - exited
    watch.wait_until_free(said.append, time.monotonic() + 60)
    freed = time.monotonic() - exited
    after, _ = nvml_used()
    say(
        f"VRAM-free wait: process gone after {process_gone:.2f} s, GpuWatch returned after "
        f"{freed:.2f} s; device used now {(used_before - after) / GIB:.2f} GiB lower"
    )
    return {
        "holder_exit_seconds": round(process_gone, 3),
        "vram_free_wait_seconds": round(freed, 3),
        "freed_bytes": used_before - after,
    }


def main(argv: list[str]) -> int:
    dry = "--dry" in argv
    import agent_manager  # noqa: F401  (src/ and its packages are importable)

    say(f"agent_manager imports ({'this machine' if dry else 'the carried wheels'})")
    if dry:
        gpu_stats_json()  # stops with NVML's own reason where there is no GPU
    try:
        import torch
    except ImportError as error:
        no_gpu(f"PyTorch is not installed ({error})")
    if dry:
        no_gpu("--dry was asked for")
    if not torch.cuda.is_available():
        no_gpu("torch.cuda.is_available() is False")
    figures = measure()
    out = os.environ.get("OUT")
    if out:
        Path(out, "device_check.json").write_text(json.dumps(figures, indent=2) + "\n")
        say(f"wrote {out}/device_check.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
