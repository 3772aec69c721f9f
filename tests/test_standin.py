"""The vLLM stand-in behaves like `vllm serve` 0.33.0 where the tool can notice (no Docker)."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest
import requests

from tests.standin.process import (
    run_standin,
    standin_command,
    standin_env,
    start_standin,
    wait_healthy,
)

MODEL = "Qwen/Qwen2.5-7B-Instruct-AWQ"


def run_to_exit(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        standin_command(args), env=standin_env(env), capture_output=True, text=True, timeout=30
    )


def test_unknown_flag_exits_2_with_argparse_text() -> None:
    result = run_to_exit([MODEL, "--swap-space", "4"])

    assert result.returncode == 2
    assert "vllm serve: error: unrecognized arguments: --swap-space 4" in result.stderr


def test_value_outside_choices_exits_2_with_argparse_text() -> None:
    result = run_to_exit([MODEL, "--dtype", "fp7"])

    assert result.returncode == 2
    assert "vllm serve: error: argument --dtype: invalid choice: 'fp7' (choose from" in (
        result.stderr
    )


def test_flag_spelling_follows_vllm_rules() -> None:
    """'_' and '-' are interchangeable and `--flag=value` works; a missing value does not."""
    ok = run_to_exit(
        [MODEL, "--max_model_len=4096", "--dtype", "half", "--kv-cache-dtype=fp8", "--help"]
    )
    missing = run_to_exit([MODEL, "--port"])

    assert ok.returncode == 0, ok.stderr
    assert missing.returncode == 2
    assert "argument --port: expected one argument" in missing.stderr


def test_gguf_quantization_is_refused_with_vllms_message() -> None:
    result = run_to_exit([MODEL, "--quantization", "q4_K_M"])

    assert result.returncode == 1
    assert "Unknown quantization method: q4_K_M. Must be one of [" in result.stdout


def test_listens_on_nothing_while_loading_then_serves_health() -> None:
    standin = start_standin([MODEL], {"STANDIN_LOAD_SECONDS": "1.5"})
    try:
        time.sleep(0.4)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", standin.port), timeout=1).close()
        wait_healthy(standin)
        assert requests.get(f"{standin.url}/health", timeout=5).status_code == 200
    finally:
        standin.stop()
    output = standin.output()
    assert "vLLM server version 0.33.0, serving model " + MODEL in output
    assert "Application startup complete." in output
    assert "GPU KV cache size: 114,592 tokens" in output


def test_models_lists_the_served_name_with_the_context_length() -> None:
    args = [MODEL, "--served-model-name", "po", "--max-model-len", "8192"]
    with run_standin(args) as vllm:
        models = requests.get(f"{vllm.url}/v1/models", timeout=5).json()

    assert [(m["id"], m["root"], m["max_model_len"]) for m in models["data"]] == [
        ("po", MODEL, 8192)
    ]


def test_streaming_chat_yields_chunks_then_done() -> None:
    with run_standin([MODEL, "--served-model-name", "po"]) as vllm:
        answer = requests.post(
            f"{vllm.url}/v1/chat/completions",
            json={
                "model": "po",
                "messages": [{"role": "user", "content": "plan the week"}],
                "max_tokens": 5,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
            stream=True,
            timeout=10,
        )
        lines = [line for line in answer.iter_lines(decode_unicode=True) if line]

    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert len(text.split()) == 5
    assert chunks[-1]["usage"]["completion_tokens"] == 5


def test_chat_for_another_model_is_404() -> None:
    with run_standin([MODEL, "--served-model-name", "po"]) as vllm:
        answer = requests.post(
            f"{vllm.url}/v1/chat/completions",
            json={"model": "architect", "messages": [{"role": "user", "content": "hi"}]},
            timeout=5,
        )

    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "The model `architect` does not exist."


def test_api_key_guards_v1_but_not_health_or_metrics() -> None:
    with run_standin([MODEL], {"VLLM_API_KEY": "sekrit"}) as vllm:
        anonymous = requests.get(f"{vllm.url}/v1/models", timeout=5)
        with_key = requests.get(
            f"{vllm.url}/v1/models", headers={"Authorization": "Bearer sekrit"}, timeout=5
        )
        health = requests.get(f"{vllm.url}/health", timeout=5)
        metrics = requests.get(f"{vllm.url}/metrics", timeout=5)

    assert (anonymous.status_code, anonymous.json()) == (401, {"error": "Unauthorized"})
    assert with_key.status_code == 200
    assert (health.status_code, metrics.status_code) == (200, 200)


def test_metrics_count_the_requests_served() -> None:
    with run_standin([MODEL, "--served-model-name", "po"]) as vllm:
        for _ in range(3):
            requests.post(
                f"{vllm.url}/v1/chat/completions",
                json={"model": "po", "messages": [{"role": "user", "content": "a b"}],
                      "max_tokens": 4},
                timeout=10,
            ).raise_for_status()  # fmt: skip
        metrics = requests.get(f"{vllm.url}/metrics", timeout=5).text

    samples = dict(
        line.rsplit(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#")
    )
    labels = '{engine="0",model_name="po"}'
    assert float(samples[f"vllm:generation_tokens_total{labels}"]) == 12
    assert float(samples[f"vllm:time_to_first_token_seconds_count{labels}"]) == 3
    assert float(samples['vllm:request_success_total{engine="0",model_name="po",'
                         'finished_reason="length"}']) == 3  # fmt: skip
    assert float(samples[f"vllm:num_requests_running{labels}"]) == 0
    assert f"vllm:kv_cache_usage_perc{labels}" in samples


def test_sigterm_stops_serving_and_exits_0() -> None:
    with run_standin([MODEL]) as vllm:
        code = vllm.stop()
        output = vllm.output()

    assert code == 0
    assert "Shutting down" in output


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("oom", "Failed to load model - not enough GPU memory."),
        ("oom", "(original error: CUDA out of memory."),
        ("kv", "No available memory for the cache blocks."),
        ("context", "To serve at least one request with the model's max seq len (32768), "
                    "(1.75 GiB KV cache is needed"),
        ("context", "the estimated maximum model length is 16384."),
        ("free-memory", "ValueError: Free memory on device cuda:0 (10.2/15.6 GiB) on startup is "
                        "less than desired GPU memory utilization (0.9, 14.04 GiB)."),
        ("gated", f"Cannot access gated repo for url https://huggingface.co/{MODEL}/resolve/"
                  "main/config.json"),
        ("notfound", f"Invalid repository ID or local directory specified: '{MODEL}'"),
        ("notfound", "RepositoryNotFoundError"),
        ("crash", "Engine core initialization failed. See root cause above."),
        ("max-len", "User-specified max_model_len (65536) is greater than the derived"),
    ],
)  # fmt: skip
def test_each_failure_prints_vllms_text_and_exits_1(kind: str, expected: str) -> None:
    args = [MODEL, "--gpu-memory-utilization", "0.9"]
    if kind == "max-len":
        args += ["--max-model-len", "65536"]
    result = run_to_exit(args, {"STANDIN_FAIL": kind})

    assert result.returncode == 1
    assert expected in result.stdout
    engine_died = kind in ("oom", "kv", "context", "free-memory", "crash")
    assert ("EngineCore failed to start." in result.stdout) is engine_died


def _stream_then_sigterm(args: list[str]) -> tuple[str, list[str], int]:
    with run_standin(args, {"STANDIN_TOKENS_PER_SECOND": "40"}) as vllm:
        answer = requests.post(
            f"{vllm.url}/v1/completions",
            json={"model": MODEL, "prompt": "once", "max_tokens": 20, "stream": True},
            stream=True,
            timeout=10,
        )
        lines = answer.iter_lines(decode_unicode=True)
        first = next(line for line in lines if line)
        vllm.proc.terminate()
        rest = [line for line in lines if line]
        return first, rest, vllm.proc.wait(10)


def test_sigterm_with_a_shutdown_timeout_lets_a_running_stream_finish() -> None:
    first, rest, code = _stream_then_sigterm([MODEL, "--shutdown-timeout", "10"])
    assert first.startswith("data: ")
    assert rest[-1] == "data: [DONE]"
    assert len(rest) == 20  # 19 more words, then [DONE]
    assert code == 0


def test_sigterm_without_a_shutdown_timeout_aborts_the_stream_like_vllm_033() -> None:
    first, rest, code = _stream_then_sigterm([MODEL])
    assert first.startswith("data: ")
    assert len(rest) < 20  # vLLM's default --shutdown-timeout 0 aborts in-flight requests
    assert code == 0


def test_metrics_move_while_a_stream_is_running() -> None:
    with run_standin([MODEL], {"STANDIN_TOKENS_PER_SECOND": "50"}) as vllm:
        answer = requests.post(
            f"{vllm.url}/v1/completions",
            json={"model": MODEL, "prompt": "go", "max_tokens": 40, "stream": True},
            stream=True,
            timeout=10,
        )
        lines = answer.iter_lines(decode_unicode=True)
        for _ in range(10):
            next(line for line in lines if line)
        during = requests.get(f"{vllm.url}/metrics", timeout=5).text
        list(lines)

    samples = dict(
        line.rsplit(" ", 1) for line in during.splitlines() if line and not line.startswith("#")
    )
    labels = f'{{engine="0",model_name="{MODEL}"}}'
    assert float(samples[f"vllm:num_requests_running{labels}"]) == 1
    assert 10 <= float(samples[f"vllm:generation_tokens_total{labels}"]) < 40
