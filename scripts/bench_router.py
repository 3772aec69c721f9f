#!/usr/bin/env python3
"""What does the router cost? `agent-manager serve` vs the agent directly (Docker + stand-in)

    .venv/bin/python scripts/bench_router.py [--requests 500] [--streams 5] [--load 1.0]
    .venv/bin/python scripts/bench_router.py --compare ../main/src --rounds 3 --cold 0

`--compare SRC` measures (a) for another checkout's router too (its `src`, e.g. main's), in
rounds that alternate the two (one `serve` per workspace at a time), so a change is judged
before/after on the same machine in the same minutes. That checkout must accept the workspace
this one writes (an older one may refuse newer spec fields: its `serve` then never answers).

The router runs as a real `agent-manager serve` process over a temporary workspace whose
agents are stand-in containers (`python3 tests/standin/build_image.py` builds the image).

  (a) added latency: `--requests` non-streaming requests (1 token, no simulated TTFT) to the
      running agent, interleaved: straight to the agent, through this router, and through
      vllm-router (PyPI `vllm-router`, vLLM production-stack's Rust router, `--policy
      round_robin` with the agent as its one static worker), on kept-alive connections; p50
      and p99 of each, the p50 each router adds, CPU per 1000 requests of each router, and the
      log lines each wrote meanwhile.    (targets: added p50 no worse than vllm-router's;
      router CPU <= 1.0 s per 1000 requests; no log line per request)
  (b) streaming tokens/s: `--streams` streams of 400 tokens each way, tokens per second from
      the first token to the last; ratio router / direct, medians     (target >= 0.98)
  (c) first request for a stopped agent: time to first token through the router minus the
      agent's own load time, median over `--cold` runs                 (target <= 0.5 s).
      The agent's own load time is what it takes started alone, the way Docker starts it:
      `docker compose up -d` of its files -> first /health 200 (median of `--cold` runs).
      Also printed: the excess over the container's StartedAt -> /health 200 only, which
      counts Docker's `compose up` (create + start, ~0.5 s on the 2-core VM) as ours.
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
import uuid
from pathlib import Path
from typing import IO

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from agent_manager.adapters.compose import compose_command, compose_env  # noqa: E402
from agent_manager.observe.status import parse_docker_time  # noqa: E402
from agent_manager.spec.workspace import resolve_workspace  # noqa: E402
from scripts.bench_launch import workspace as launch_workspace  # noqa: E402
from tests.standin.build_image import build  # noqa: E402
from tests.standin.override import write_test_override  # noqa: E402
from tests.standin.process import free_port  # noqa: E402

CLI = str(REPO / ".venv" / "bin" / "agent-manager")
VLLM_ROUTER = str(REPO / ".venv" / "bin" / "vllm-router")
PROMPT = [{"role": "user", "content": "measure the router"}]
STREAM_TOKENS = 400


def workspace(root: Path, load_seconds: float) -> dict[str, int]:
    """bench_launch's workspace (default agents on free ports), with fast token knobs."""
    ports = launch_workspace(root, load_seconds)
    knobs = {
        "STANDIN_LOAD_SECONDS": str(load_seconds),
        "STANDIN_TTFT_SECONDS": "0",
        "STANDIN_TOKENS_PER_SECOND": "1000",
    }
    for agent in ports:
        write_test_override(root, agent, knobs)
    return ports


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc), load-independent unlike wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lines_of(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def added_latency(
    client: httpx.Client,
    bases: dict[str, str],
    count: int,
    pids: dict[str, int],
    logs: dict[str, Path],
) -> tuple[float, float]:
    """`bases`: direct, router, vllm-router; `pids` and `logs` of the two routers. Returns
    the added p50 (ms) of this router and of vllm-router."""
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    lines_before = {name: lines_of(path) for name, path in logs.items()}
    body = {"model": "po", "messages": PROMPT, "max_tokens": 1}
    names = list(bases)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(count * len(names)):
        which = names[index % len(names)]
        start = time.perf_counter()
        answer = client.post(bases[which] + "/v1/chat/completions", json=body)
        times[which].append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.text
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    lines = {name: lines_of(path) - lines_before[name] for name, path in logs.items()}
    p50 = {k: statistics.median(v) * 1000 for k, v in times.items()}
    p99 = {k: percentile(v, 99) * 1000 for k, v in times.items()}
    print(f"(a) added latency over {count} non-streaming requests each way, interleaved")
    for name in names:
        print(f"    {name:11s} p50 {p50[name]:6.2f} ms   p99 {p99[name]:6.2f} ms")
    for name in pids:
        added = p50[name] - p50["direct"]
        print(
            f"    {name:11s} added p50 {added:5.2f} ms  p99 {p99[name] - p99['direct']:6.2f} ms"
            f"   CPU {cpu[name] * 1000 / count:5.2f} s per 1000 requests   "
            f"{lines[name]} log lines"
        )
    ours, theirs = p50["router"] - p50["direct"], p50["vllm-router"] - p50["direct"]
    verdict = "met" if ours <= theirs else "missed"
    print(
        f"    target: added p50 no worse than vllm-router's: {verdict} "
        f"({ours:.2f} vs {theirs:.2f} ms)"
    )
    per_1000 = cpu["router"] * 1000 / count
    print(
        f"    target: router CPU <= 1.0 s per 1000 requests: {'met' if per_1000 <= 1 else 'missed'}"
    )
    load = os.getloadavg()[0]
    print(f"    (load average {load:.1f}; CPU is user+system from /proc)")
    return ours, theirs


def summary(added: dict[str, list[tuple[float, float]]]) -> None:
    """Over the rounds of (a): in how many this router's added p50 was no worse."""
    for src, rounds in added.items():
        met = sum(ours <= theirs for ours, theirs in rounds)
        ours = statistics.median(r[0] for r in rounds)
        theirs = statistics.median(r[1] for r in rounds)
        print(
            f"(a) over {len(rounds)} rounds, router from {src}: added p50 no worse than "
            f"vllm-router's in {met} of {len(rounds)} (medians {ours:.2f} vs {theirs:.2f} ms)"
        )


def stream_rate(client: httpx.Client, base: str) -> float:
    body = {"model": "po", "messages": PROMPT, "max_tokens": STREAM_TOKENS, "stream": True}
    first = last = 0.0
    tokens = 0
    with client.stream("POST", base + "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                tokens += 1
                last = time.perf_counter()
                first = first or last
    assert tokens == STREAM_TOKENS, tokens
    return (tokens - 1) / (last - first)


def streaming(client: httpx.Client, router: str, direct: str, count: int) -> None:
    rates: dict[str, list[float]] = {"router": [], "direct": []}
    for _ in range(count):
        rates["direct"].append(stream_rate(client, direct))
        rates["router"].append(stream_rate(client, router))
    median = {k: statistics.median(v) for k, v in rates.items()}
    ratio = median["router"] / median["direct"]
    print(f"(b) streaming, {count} streams of {STREAM_TOKENS} tokens each way (stand-in 1000/s)")
    print(f"    direct {median['direct']:7.1f} tok/s   router {median['router']:7.1f} tok/s")
    print(f"    ratio router/direct {ratio:.3f}   target >= 0.98")


def first_healthy(url: str, found: list[float], stop: threading.Event) -> None:
    # One kept client and a 5 ms period: a new client per poll would take the GIL from the
    # thread reading the first token and inflate the router's share.
    with httpx.Client(timeout=0.5) as client:
        while not stop.is_set():
            try:
                if client.get(url).status_code == 200:
                    found.append(time.time())
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.005)


def container_started(home: list[str], agent: str) -> float:
    listed = subprocess.run([CLI, *home, "status", "--json"], capture_output=True, text=True)
    row = next(r for r in json.loads(listed.stdout)["agents"] if r["agent"] == agent)
    value = parse_docker_time(row["started_at"])
    assert value is not None
    return value


def alone_load(root: Path, ports: dict[str, int], runs: int) -> float:
    """Median seconds from `docker compose up -d` (no agent-manager) to the first /health 200."""
    subprocess.run([CLI, "--home", str(root), "compose"], capture_output=True, check=True)
    ws = resolve_workspace(root)
    times: list[float] = []
    for run in range(runs):
        agent = ("architect", "developer")[run % 2]
        healthy: list[float] = []
        url = f"http://127.0.0.1:{ports[agent]}/health"
        start = time.time()
        up = subprocess.Popen(
            compose_command(ws, agent, "up", "-d"),
            env=compose_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        gave_up = threading.Event()
        timer = threading.Timer(120, gave_up.set)
        timer.start()
        first_healthy(url, healthy, gave_up)
        timer.cancel()
        up.wait(60)
        if not healthy:
            raise SystemExit(f"{agent} started alone did not answer /health within 120 s")
        times.append(healthy[0] - start)
        subprocess.run(compose_command(ws, agent, "down"), env=compose_env(), capture_output=True)
        print(f"    alone {run + 1} {agent:9s} compose up -> /health 200 {times[-1]:5.2f} s")
    return statistics.median(times)


def cold_start(
    home: list[str], router: str, ports: dict[str, int], runs: int, alone: float
) -> None:
    excess: list[float] = []
    excess_alone: list[float] = []
    for run in range(runs):
        agent = ("architect", "developer")[run % 2]
        subprocess.run([CLI, *home, "stop"], capture_output=True, check=True)
        healthy: list[float] = []
        stop = threading.Event()
        url = f"http://127.0.0.1:{ports[agent]}/health"
        watcher = threading.Thread(target=first_healthy, args=(url, healthy, stop), daemon=True)
        watcher.start()
        body = {"model": agent, "messages": PROMPT, "max_tokens": 4, "stream": True}
        start = time.time()
        ttft = None
        seen = []
        with httpx.stream("POST", router + "/v1/chat/completions", json=body, timeout=300) as r:
            for line in r.iter_lines():
                seen.append(line)
                if '"content":"' in line and '"content":""' not in line:
                    ttft = time.time() - start
                    break
        stop.set()
        watcher.join(5)
        if ttft is None or not healthy:
            raise SystemExit(f"no first token from {agent} (health seen: {healthy}): {seen}")
        own_load = healthy[0] - container_started(home, agent)
        excess.append(ttft - own_load)
        excess_alone.append(ttft - alone)
        switch = httpx.get(router + "/router/status").json()["last_switch"]["seconds"]
        print(
            f"    run {run + 1} {agent:9s} TTFT {ttft:5.2f} s   excess over the agent alone "
            f"{excess_alone[-1]:5.2f} s   over StartedAt -> health ({own_load:4.2f} s) "
            f"{excess[-1]:5.2f} s (switch {switch:4.2f} s, router after it {ttft - switch:4.2f} s)"
        )
    value = statistics.median(excess_alone)
    print(
        f"(c) first request for a stopped agent: TTFT - the agent's own load time ({alone:.2f} s,"
        f" compose up -> /health 200), median {value:.2f} s"
    )
    print(f"    target <= 0.5 s ({value / 0.5:.0%} of target)")
    print(
        f"    the same minus StartedAt -> /health only (Docker's create + start counted as ours):"
        f" {statistics.median(excess):.2f} s"
    )


def start_router(
    home: list[str], port: int, log: IO[str], src: str | None
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=src) if src else None  # first on sys.path: that checkout
    server = subprocess.Popen(
        [CLI, *home, "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    wait_for(f"http://127.0.0.1:{port}/health")
    return server


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        process.wait(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--streams", type=int, default=5)
    parser.add_argument("--cold", type=int, default=4)
    parser.add_argument("--load", type=float, default=1.0, help="stand-in load seconds")
    parser.add_argument("--compare", metavar="SRC", help="another checkout's src, measured too")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of (a)")
    args = parser.parse_args()
    build()
    os.environ["AGENT_MANAGER_INSTANCE"] = f"bench-{uuid.uuid4().hex[:8]}"
    root = Path(tempfile.mkdtemp(prefix="bench-router-"))
    home = ["--home", str(root)]
    port = free_port()
    router = f"http://127.0.0.1:{port}"
    log = (root / "router.log").open("w")
    rust_log = (root / "vllm-router.log").open("w")
    rust_port = free_port()
    rust = f"http://127.0.0.1:{rust_port}"
    server = rust_router = None
    try:
        ports = workspace(root, args.load)
        direct = f"http://127.0.0.1:{ports['po']}"
        server = start_router(home, port, log, None)
        with httpx.Client(timeout=300) as client:
            body = {"model": "po", "messages": PROMPT, "max_tokens": 1}
            assert client.post(router + "/v1/chat/completions", json=body).status_code == 200
            rust_router = subprocess.Popen(
                [VLLM_ROUTER, "--host", "127.0.0.1", "--port", str(rust_port), "--policy",
                 "round_robin", "--worker-urls", direct,
                 # its metrics listener defaults to 29000, which may be taken
                 "--prometheus-port", str(free_port()), "--prometheus-host", "127.0.0.1"],
                stdout=rust_log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            wait_for(rust + "/health")
            bases = {"direct": direct, "router": router, "vllm-router": rust}
            for _ in range(50):  # warm every path
                for base in bases.values():
                    client.post(base + "/v1/chat/completions", json=body)
            logs = {"router": Path(log.name), "vllm-router": Path(rust_log.name)}
            checkouts = [None, args.compare] if args.compare else [None]
            added: dict[str, list[tuple[float, float]]] = {}
            for round_ in range(args.rounds):
                for src in checkouts:
                    if len(checkouts) > 1 or round_ > 0:
                        stop(server)
                        server = start_router(home, port, log, src)
                        for _ in range(50):
                            client.post(router + "/v1/chat/completions", json=body)
                    print(f"round {round_ + 1}, router from {src or 'this checkout'}")
                    pids = {"router": server.pid, "vllm-router": rust_router.pid}
                    log.flush()
                    result = added_latency(client, bases, args.requests, pids, logs)
                    added.setdefault(src or "this checkout", []).append(result)
            if args.rounds > 1:
                summary(added)
            if args.compare:
                stop(server)
                server = start_router(home, port, log, None)
            if args.streams:
                streaming(client, router, direct, args.streams)
        if args.cold:
            subprocess.run([CLI, *home, "stop", "--all"], capture_output=True, check=True)
            alone = alone_load(root, ports, args.cold)
            cold_start(home, router, ports, args.cold, alone)
    finally:
        for process in (server, rust_router):
            stop(process)
        rust_log.close()
        subprocess.run([CLI, *home, "stop", "--all"], capture_output=True)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
