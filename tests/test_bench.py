"""`bench`: the statistics from plain samples, and the figures measured from a stand-in server
whose speed is known (TTFT 0.05 s, 100 tokens/s)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent_manager.client.bench import (
    BenchSettings,
    Sample,
    make_prompt,
    percentile,
    server_counts,
    summarize,
)
from agent_manager.spec.endpoint import Endpoint
from tests.conftest import CliResult
from tests.standin.process import StandinProcess, free_port, run_standin

MODEL = "Qwen/Qwen2.5-7B-Instruct-AWQ"
Cli = Callable[..., CliResult]
TTFT_S = 0.05
TOKENS_PER_S = 100.0


def point_agent_at(workspace: Path, agent: str, port: int) -> None:
    spec = workspace / "agents" / f"{agent}.yaml"
    spec.write_text(re.sub(r"(?m)^port: \d+$", f"port: {port}", spec.read_text()))


@pytest.fixture
def timed_server(workspace: Path) -> Iterator[StandinProcess]:
    env = {"STANDIN_TTFT_SECONDS": str(TTFT_S), "STANDIN_TOKENS_PER_SECOND": str(TOKENS_PER_S)}
    with run_standin([MODEL, "--served-model-name", "po"], env) as server:
        point_agent_at(workspace, "po", server.port)
        yield server


# --- statistics -----------------------------------------------------------------------------


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile([3.0], 95) == 3.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0) == 1.0


def test_per_request_rate_counts_tokens_after_the_first() -> None:
    # 1 s to the first token, then 10 more tokens in 0.5 s.
    assert Sample(True, latency=1.5, ttft=1.0, output_tokens=11).decode_rate == pytest.approx(20)
    assert Sample(True, latency=1.0, ttft=1.0, output_tokens=1).decode_rate is None


def test_summary_of_known_samples() -> None:
    endpoint = Endpoint("po", "http://127.0.0.1:1", "po", None)
    samples = [
        Sample(True, latency=2.0, ttft=0.5, output_tokens=31, prompt_tokens=100),
        Sample(True, latency=3.0, ttft=1.0, output_tokens=41, prompt_tokens=102),
        Sample(False, latency=0.1, error="agent po refused"),
    ]
    report = summarize(endpoint, BenchSettings(3, 2, 64, 100), samples, duration=4.0)
    assert (report.completed, report.failed) == (2, 1)
    assert report.requests_per_min == pytest.approx(30.0)
    assert report.output_tokens == 72
    assert report.output_tokens_per_s == pytest.approx(18.0)
    assert report.prompt_tokens_mean == pytest.approx(101)
    assert report.ttft_s is not None and report.ttft_s.mean == pytest.approx(0.75)
    assert report.latency_s is not None and report.latency_s.p50 == pytest.approx(2.5)
    rates = report.request_output_tokens_per_s
    assert rates is not None and (rates.min, rates.max) == (pytest.approx(20), pytest.approx(20))
    assert report.errors == ["agent po refused"]


def test_server_counts_are_the_difference_of_the_counters() -> None:
    before = {
        "vllm:prompt_tokens_total": 10.0,
        "vllm:generation_tokens_total": 5.0,
        "vllm:time_to_first_token_seconds_sum": 1.0,
        "vllm:time_to_first_token_seconds_count": 2.0,
    }
    after = {
        "vllm:prompt_tokens_total": 110.0,
        "vllm:generation_tokens_total": 45.0,
        "vllm:request_success_total": 4.0,
        "vllm:time_to_first_token_seconds_sum": 1.4,
        "vllm:time_to_first_token_seconds_count": 6.0,
    }
    counts = server_counts(before, after)
    assert counts is not None
    assert (counts.prompt_tokens, counts.generation_tokens, counts.requests) == (100, 40, 4)
    assert counts.ttft_mean_s == pytest.approx(0.1)
    assert server_counts(None, after) is None


def test_prompts_have_the_asked_length_and_differ_per_request() -> None:
    assert len(make_prompt(0, 256).split()) == 256
    assert make_prompt(1, 50) != make_prompt(2, 50)


# --- against the stand-in with a known speed ---------------------------------------------------


def test_bench_measures_the_speed_the_server_really_has(
    cli: Cli, workspace: Path, timed_server: StandinProcess
) -> None:
    result = cli(
        "--home", str(workspace), "bench", "po",
        "--requests", "8", "--concurrency", "2", "--max-tokens", "40", "--prompt-len", "64",
        "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["completed"], report["failed"]) == (8, 0)
    # Generous bounds: the test machine has 2 cores and other tests run beside this one.
    assert 0.045 <= report["ttft_s"]["mean"] <= 0.15
    assert 70 <= report["request_output_tokens_per_s"]["p50"] <= 101
    expected_latency = TTFT_S + 39 / TOKENS_PER_S
    assert expected_latency * 0.95 <= report["latency_s"]["p50"] <= expected_latency * 1.4
    # Two at a time, each ~0.44 s: requests/min follows from the latency.
    expected_rpm = 2 * 60 / report["latency_s"]["mean"]
    assert report["requests_per_min"] == pytest.approx(expected_rpm, rel=0.3)
    assert report["output_tokens"] == 8 * 40
    assert report["server"]["generation_tokens"] == 8 * 40
    assert report["server"]["requests"] == 8
    assert report["server"]["prompt_tokens"] == round(report["prompt_tokens_mean"] * 8)
    assert report["server"]["ttft_mean_s"] == pytest.approx(TTFT_S, abs=0.03)


def test_bench_prints_a_table_of_the_figures(
    cli: Cli, workspace: Path, timed_server: StandinProcess
) -> None:
    result = cli("--home", str(workspace), "bench", "po", "-n", "2", "-c", "2", "--max-tokens", "5")
    assert result.code == 0, result.stderr
    for label in (
        "time to first token (s)",
        "end-to-end latency (s)",
        "output tokens/s per request",
        "requests/min",
        "server generation tokens (/metrics)",
    ):
        assert label in result.stdout
    assert re.search(r"completed\s+│\s+2/2 in", result.stdout)


def test_bench_of_an_agent_that_is_not_running_says_how_to_launch_it(
    cli: Cli, workspace: Path
) -> None:
    point_agent_at(workspace, "po", free_port())
    result = cli("--home", str(workspace), "bench", "po", "-n", "1")
    assert result.code == 1
    said = " ".join(result.stderr.split())
    # The hint carries the --home in use, so following it acts on the same workspace.
    assert f"start it with `agent-manager --home {workspace} launch po`" in said


def test_bench_where_every_request_is_refused_explains_why(cli: Cli, workspace: Path) -> None:
    with run_standin([MODEL, "--served-model-name", "po", "--api-key", "k"]) as server:
        point_agent_at(workspace, "po", server.port)
        result = cli("--home", str(workspace), "bench", "po", "-n", "3", "--json")
    assert result.code == 1
    assert "wrong or missing API key" in result.stderr
    assert result.stdout == ""


def test_metrics_text_sums_samples_of_a_name_across_labels() -> None:
    from agent_manager.adapters.http import parse_metrics

    text = (
        "# HELP vllm:num_requests_running Requests running.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0",model_name="po"} 2.0\n'
        'vllm:num_requests_running{engine="1",model_name="po"} 1.0\n'
        "# TYPE vllm:generation_tokens counter\n"
        'vllm:generation_tokens_total{model_name="po"} 42.0\n'
        "# TYPE vllm:time_to_first_token_seconds histogram\n"
        'vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="po"} 3.0\n'
        'vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="po"} 4.0\n'
        'vllm:time_to_first_token_seconds_sum{model_name="po"} 0.5\n'
        'vllm:time_to_first_token_seconds_count{model_name="po"} 4.0\n'
    )
    values = parse_metrics(text)
    assert values["vllm:num_requests_running"] == 3.0
    assert values["vllm:generation_tokens_total"] == 42.0
    assert values["vllm:time_to_first_token_seconds_sum"] == 0.5
    assert values["vllm:time_to_first_token_seconds_count"] == 4.0


def test_bench_starts_the_agent_only_when_asked(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.docker import install

    fake = install(monkeypatch)

    def measured(endpoint: object, settings: object) -> None:
        raise SystemExit(0)  # the agent answers: what bench then measures is tested above

    monkeypatch.setattr("agent_manager.client.bench.run_bench", measured)
    without = cli("--home", str(workspace), "bench", "po", "-n", "1")
    assert without.code == 1 and not any(op.startswith("up") for op in fake.ops)
    started = cli("--home", str(workspace), "bench", "po", "-n", "1", "--start")
    assert started.code == 0, started.output
    assert "po is not running; starting it" in started.stderr
    assert "up -d po" in fake.ops
