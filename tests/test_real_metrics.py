"""The metric names `status` and `bench` read exist on the REAL vLLM server's /metrics
(tests/fixtures/vllm-0.32-cpu/metrics.txt, recorded after 1 chat and 4 bench requests)."""

from __future__ import annotations

from pathlib import Path

from agent_manager.adapters.http import parse_metrics

METRICS = Path(__file__).parent / "fixtures" / "vllm-0.32-cpu" / "metrics.txt"


def test_the_metrics_status_and_bench_read_are_served_by_real_vllm() -> None:
    metrics = parse_metrics(METRICS.read_text(encoding="utf-8"))
    # observe/status.py (status) reads these gauges.
    for gauge in ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc"):
        assert metrics[f"vllm:{gauge}"] == 0.0, gauge
    # client/bench.py reads these counters: 5 requests were served when they were recorded.
    assert metrics["vllm:request_success_total"] == 5.0
    assert metrics["vllm:time_to_first_token_seconds_count"] == 5.0
    assert metrics["vllm:time_to_first_token_seconds_sum"] > 0
    assert metrics["vllm:prompt_tokens_total"] > 0 and metrics["vllm:generation_tokens_total"] > 0
