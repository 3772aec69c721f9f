"""How much CPU does `agent-manager gpu-stats --json` cost? Target: well under 0.5 s.

Measured as the CPU time (user + system) of a fresh child process, median of N runs:
1. `agent-manager --help`: the floor every command pays (interpreter + Typer + command tree).
2. `agent-manager gpu-stats --json` for real: on a machine without an NVIDIA driver this is
   the "no NVML" failure path (pynvml imported, nvmlInit fails, one sentence, exit 1).
3. The same command in a child whose NVML is a fake with one GPU and two processes (the
   success path without a driver): snapshot, /proc lookups and JSON, no Docker SDK because
   no process runs in a container.
Also lists the heavy modules each path imported, to catch an import that sneaks in.

Usage: .venv/bin/python scripts/bench_gpu_stats.py [runs]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "agent-manager"
TARGET_S = 0.5
HEAVY = ("docker", "pynvml", "huggingface_hub", "requests", "rich.table", "rich.live", "yaml")

FAKE_RUN = """
import sys
from agent_manager.adapters import nvml
from agent_manager.adapters.nvml import GpuDevice, GpuProcess

class Fake:
    def devices(self):
        return [GpuDevice(0, "NVIDIA GeForce RTX 4080", "GPU-0", "580.95.05", "13.0",
                          16 * 2**30, 15 * 2**30, 2**30, 97, 66, 290.0, 320.0, 2700, 11201, 60)]
    def processes(self):
        return [GpuProcess(0, 1, 14 * 2**30), GpuProcess(0, 2, 2**29)]

nvml.get_nvml = lambda: Fake()
from agent_manager.cli.app import main
try:
    main(["gpu-stats", "--json"])
except SystemExit:
    pass
heavy = [m for m in HEAVY if m in sys.modules]
print("HEAVY:" + ",".join(heavy), file=sys.stderr)
"""

PROBE = """
import runpy, sys
sys.argv = ["agent-manager"] + sys.argv[1:]
try:
    from agent_manager.cli.app import main
    main(sys.argv[1:])
except SystemExit:
    pass
finally:
    heavy = [m for m in HEAVY if m in sys.modules]
    print("HEAVY:" + ",".join(heavy), file=sys.stderr)
"""


def child_cpu(argv: list[str]) -> tuple[float, float, str]:
    """(cpu seconds, wall seconds, stderr) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, done.stderr


def measure(label: str, argv: list[str], runs: int) -> float:
    child_cpu(argv)  # warm the page cache and .pyc files
    samples = [child_cpu(argv) for _ in range(runs)]
    cpu = statistics.median(s[0] for s in samples)
    wall = statistics.median(s[1] for s in samples)
    heavy = next(
        (line[6:] for line in samples[-1][2].splitlines() if line.startswith("HEAVY:")), "?"
    )
    print(
        f"{label:<44} cpu {cpu * 1000:6.0f} ms  wall {wall * 1000:6.0f} ms  "
        f"{cpu / TARGET_S:5.0%} of {TARGET_S} s  heavy imports: {heavy or 'none'}"
    )
    return cpu


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    py = sys.executable
    heavy = f"HEAVY = {HEAVY!r}\n"
    print(f"median of {runs} runs, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    base = measure("agent-manager --help", [py, "-c", heavy + PROBE, "--help"], runs)
    real = measure(
        "agent-manager gpu-stats --json (real NVML)",
        [py, "-c", heavy + PROBE, "gpu-stats", "--json"],
        runs,
    )
    fake = measure("gpu-stats --json, fake NVML, 2 processes", [py, "-c", heavy + FAKE_RUN], runs)
    plain = measure(
        "agent-manager gpu-stats --json (entry point)", [str(BIN), "gpu-stats", "--json"], runs
    )
    print(
        f"gpu-stats over --help: real {real / base:.2f}x, fake-NVML {fake / base:.2f}x, "
        f"entry point {plain / base:.2f}x; worst {max(real, fake, plain) / TARGET_S:.0%} of target"
    )


if __name__ == "__main__":
    main()
