"""Benchmark download-models against the local fake hub: bytes fetched vs bytes needed.

    .venv/bin/python scripts/bench_download.py [--shard-mb 8] [--shards 4]

Targets: a fresh download fetches exactly what vLLM needs (ratio 1.00, decoy .bin/.gguf/onnx
files never fetched); a re-run fetches 0 bytes; after a connection cut the next run fetches
only the missing bytes (cut + resumed = needed, ratio 1.00). For comparison, the same cut with
huggingface_hub's own snapshot_download, which restarts a partial file from zero.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# huggingface_hub reads these at import time.
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.pop("HF_HUB_CACHE", None)

from agent_manager.adapters import hf_cache  # noqa: E402
from agent_manager.adapters import hub as hub_adapter  # noqa: E402
from agent_manager.models import downloads  # noqa: E402
from agent_manager.spec.agents import Agent, parse_spec  # noqa: E402
from tests.fakes.fake_hub import FakeHub  # noqa: E402

MB = 1_000_000


def make_repo(shards: int, shard_bytes: int) -> tuple[dict[str, bytes], int]:
    files: dict[str, bytes] = {
        "config.json": b'{"model_type": "qwen2"}',
        "generation_config.json": b"{}",
        "tokenizer.json": os.urandom(2 * MB),
        "tokenizer_config.json": b"{}",
        "model.safetensors.index.json": b'{"weight_map": {}}',
    }
    for index in range(1, shards + 1):
        files[f"model-{index:05d}-of-{shards:05d}.safetensors"] = os.urandom(shard_bytes)
    needed = sum(len(v) for v in files.values())
    # Decoys a naive snapshot would also fetch.
    files["pytorch_model.bin"] = os.urandom(shard_bytes)
    files["model-q4.gguf"] = os.urandom(shard_bytes // 2)
    files["onnx/model.onnx"] = os.urandom(shard_bytes // 2)
    return files, needed


def agent(model: str) -> Agent:
    return parse_spec("bench", Path("agents/bench.yaml"), f"model: {model}\nport: 8000\n")


def run(hub: FakeHub, who: Agent) -> tuple[int, float, str]:
    hub.reset_counters()
    started = time.perf_counter()
    report = downloads.run_downloads([who])
    return hub.bytes_served, time.perf_counter() - started, report.agents[0].status


def fresh_cache() -> None:
    os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="bench-hf-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--shard-mb", type=float, default=8.0)
    args = parser.parse_args()
    hf_cache.RETRY_DELAY_S = 0.0
    files, needed = make_repo(args.shards, int(args.shard_mb * MB))
    total_repo = sum(len(v) for v in files.values())
    with FakeHub() as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        hub.add_repo("bench/model", files)
        who = agent("bench/model")
        print(
            f"repo: {total_repo / MB:.1f} MB in {len(files)} files; vLLM needs {needed / MB:.1f} MB"
        )

        fresh_cache()
        served, seconds, status = run(hub, who)
        print(
            f"fresh download : fetched {served / MB:8.2f} MB  ratio {served / needed:.2f}  "
            f"{seconds:6.2f} s  {served / MB / seconds:7.1f} MB/s  ({status})"
        )
        served, seconds, status = run(hub, who)
        print(
            f"re-run         : fetched {served / MB:8.2f} MB  requests {len(hub.requests)}  "
            f"{seconds * 1000:6.1f} ms  ({status})"
        )

        fresh_cache()
        cut = int(needed * 0.4)
        hub.cut_after(cut)
        first, _, status1 = run(hub, who)
        hub.heal()
        second, seconds, status2 = run(hub, who)
        print(
            f"cut at 40%     : fetched {first / MB:8.2f} MB ({status1}), then resumed "
            f"{second / MB:.2f} MB ({status2}); total/needed {(first + second) / needed:.2f}"
        )

        fresh_cache()
        started = time.perf_counter()
        served = _snapshot_download(hub)
        seconds = time.perf_counter() - started
        print(
            f"hf snapshot_download, fresh (same files): {served / MB:.2f} MB  "
            f"{seconds:6.2f} s  {served / MB / seconds:7.1f} MB/s"
        )

        fresh_cache()
        hub.cut_after(cut)
        first = _snapshot_download(hub)
        hub.heal()
        second = _snapshot_download(hub)
        print(
            f"hf snapshot_download, same cut: {first / MB:.2f} MB then {second / MB:.2f} MB; "
            f"total/needed {(first + second) / needed:.2f} (a partial file starts over)"
        )


def _snapshot_download(hub: FakeHub) -> int:
    from huggingface_hub import snapshot_download

    hub.reset_counters()
    patterns = ["*.json", "*.safetensors"]
    try:
        snapshot_download(
            "bench/model",
            cache_dir=hub_adapter.cache_dir(),
            endpoint=hub.url,
            allow_patterns=patterns,
            max_workers=1,
        )
    except Exception as error:  # noqa: BLE001 - the cut is expected to fail the first call
        print(f"  (snapshot_download stopped: {type(error).__name__})")
    return hub.bytes_served


if __name__ == "__main__":
    main()
